//! Where a request comes from, for the per-source push rate limit.
//!
//! The source is the TCP peer address (which `serve` hands to `App::handle`: an
//! argument of `ingress::push_direct`, or `ConnectInfo` for routed requests), unless that peer is a configured trusted proxy: then `X-Forwarded-For` is
//! read from the right (each proxy appends the address it received the request from)
//! and the first address that is not itself a trusted proxy is the source. A client
//! can write anything into `X-Forwarded-For`, so the header is never believed from a
//! peer that is not a trusted proxy, and only the entries added by trusted proxies
//! count.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address a request came from, as far as this server can trust it.
pub fn source_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let mut source = peer;
    // Several header lines are one list, in order: walk them last to first.
    for line in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        let Ok(line) = line.to_str() else {
            return source;
        };
        for entry in line.rsplit(',') {
            // Garbage where an address should be: nothing to its left can be trusted,
            // so the last trusted hop is as far as we can see.
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                return source;
            };
            source = address.to_canonical();
            if !trusted.contains(source) {
                return source;
            }
        }
    }
    source
}

/// The key the per-source limit counts `address` under: an IPv4 address itself, an
/// IPv6 address's /64 (one host usually holds a whole /64, so counting single IPv6
/// addresses would let it dodge the limit and fill the limiter's memory).
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).expect("ascii"));
        }
        headers
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("valid");
        let spoofed = forwarded(&["198.51.100.9"]);
        assert_eq!(
            source_address(ip("203.0.113.5"), &spoofed, &none),
            ip("203.0.113.5")
        );
        assert_eq!(
            source_address(ip("203.0.113.5"), &spoofed, &proxies),
            ip("203.0.113.5")
        );
        assert_eq!(
            source_address(ip("10.1.1.1"), &spoofed, &proxies),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_source() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("valid");
        // A client claims 1.2.3.4; the ingress (10.0.0.2) saw it come from
        // 198.51.100.9 and an internal proxy (10.0.0.3) forwarded it.
        let headers = forwarded(&["1.2.3.4, 198.51.100.9", "10.0.0.2"]);
        assert_eq!(
            source_address(ip("10.0.0.3"), &headers, &proxies),
            ip("198.51.100.9")
        );
        // Every hop trusted: the leftmost is as far as we can see.
        let headers = forwarded(&["10.0.0.9, 10.0.0.2"]);
        assert_eq!(
            source_address(ip("10.0.0.3"), &headers, &proxies),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            source_address(ip("10.0.0.3"), &HeaderMap::new(), &proxies),
            ip("10.0.0.3")
        );
        // Garbage stops the walk at the last trusted hop.
        let headers = forwarded(&["198.51.100.9, unknown, 10.0.0.2"]);
        assert_eq!(
            source_address(ip("10.0.0.3"), &headers, &proxies),
            ip("10.0.0.2")
        );
        // IPv4-mapped IPv6 peers (a dual-stack listener) are their IPv4 address.
        assert_eq!(
            source_address(
                ip("::ffff:10.0.0.3"),
                &forwarded(&["198.51.100.9"]),
                &proxies
            ),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        assert_eq!(limit_key(ip("203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(limit_key(ip("::ffff:203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
    }
}
