//! Where a push comes from, and the per-source limit on pushes with an unknown token
//! ([`UnknownTokenLimit`]).
//!
//! The source is the TCP peer address (which `serve` hands to `App::handle`: an
//! argument of `ingress::push_direct`, or `ConnectInfo` for routed requests), unless
//! that peer is a configured trusted proxy: then `X-Forwarded-For` is
//! read from the right (each proxy appends the address it received the request from)
//! and the first address that is not itself a trusted proxy is the source. A client
//! can write anything into `X-Forwarded-For`, so the header is never believed from a
//! peer that is not a trusted proxy, and only the entries added by trusted proxies
//! count.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use dashmap::DashMap;
use governor::DefaultKeyedRateLimiter;
use governor::clock::{Clock as _, DefaultClock};

use crate::config::TrustedProxies;

/// The per-source limit on pushes whose token is unknown, which is what guessing
/// tokens produces; valid pushes answer to their monitor's limit only, so every job
/// behind one NAT or proxy does not share one budget.
///
/// A source that has used up its budget is *blocked* until its budget has room for
/// one more: every push from it is then refused before its token is looked up, a
/// right token's too. Were a blocked source's pushes still looked up, a guesser
/// would lose nothing by ignoring the 429s: each guess would still be tried.
pub struct UnknownTokenLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Sources blocked, keyed by [`limit_key`], until when.
    blocked: DashMap<IpAddr, Instant>,
    /// Whether `blocked` may hold anything: a plain push checks this flag, not the
    /// map, while nobody is blocked (the usual case).
    any_blocked: AtomicBool,
}

impl UnknownTokenLimit {
    pub fn new(limiter: DefaultKeyedRateLimiter<IpAddr>) -> Self {
        Self {
            limiter,
            blocked: DashMap::new(),
            any_blocked: AtomicBool::new(false),
        }
    }

    /// `Err(retry_after)` while the source with this key is blocked.
    pub fn check(&self, key: IpAddr) -> Result<(), Duration> {
        if !self.any_blocked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(until) = self.blocked.get(&key).map(|until| *until) else {
            return Ok(());
        };
        match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Err(left),
            _ => {
                self.blocked
                    .remove_if(&key, |_, until| *until <= Instant::now());
                Ok(())
            }
        }
    }

    /// Counts an unknown token from the source with this key; `Err(retry_after)` if
    /// that used up its budget, which blocks it.
    pub fn count_unknown(&self, key: IpAddr) -> Result<(), Duration> {
        let Err(not_until) = self.limiter.check_key(&key) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        self.blocked.insert(key, Instant::now() + wait);
        self.any_blocked.store(true, Ordering::Relaxed);
        Err(wait)
    }

    /// Forgets sources that have been quiet and blocks that have ended, so the state
    /// does not grow with every address ever seen.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
        self.blocked.shrink_to_fit();
        if self.blocked.is_empty() {
            self.any_blocked.store(false, Ordering::Relaxed);
            // A block inserted meanwhile keeps the flag up.
            if !self.blocked.is_empty() {
                self.any_blocked.store(true, Ordering::Relaxed);
            }
        }
    }
}

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
    fn a_source_that_spends_its_budget_is_blocked_and_others_are_not() {
        let quota = governor::Quota::per_second(std::num::NonZeroU32::MIN)
            .allow_burst(std::num::NonZeroU32::new(2).expect("2 is not 0"));
        let limit = UnknownTokenLimit::new(DefaultKeyedRateLimiter::keyed(quota));
        let (guesser, neighbour) = (ip("203.0.113.5"), ip("203.0.113.6"));
        assert_eq!(limit.check(guesser), Ok(()));
        assert_eq!(limit.count_unknown(guesser), Ok(()));
        assert_eq!(limit.count_unknown(guesser), Ok(()));
        let retry_after = limit.count_unknown(guesser).expect_err("over a burst of 2");
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        assert!(
            limit.check(guesser).is_err(),
            "blocked until the budget refills"
        );
        assert_eq!(limit.check(neighbour), Ok(()));
        limit.forget_idle();
        assert!(
            limit.check(guesser).is_err(),
            "a running block is not forgotten"
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
