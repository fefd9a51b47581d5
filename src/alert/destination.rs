//! Where alerts may go. By default anywhere: many installations alert internal
//! services. With `--alert-deny-private-addresses` ([`AddressPolicy::DenyPrivate`])
//! no alert reaches a loopback, private, link-local or otherwise non-public address
//! (`docs/alerts.md`, "Private addresses"): the API refuses a channel whose host is
//! such an address written out, and every send refuses one, whether written out or
//! found by resolving a name (the HTTP client resolves through [`PublicOnly`], so the
//! address checked is the address connected to).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which destinations alerts may reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Any address: the default.
    #[default]
    AllowAll,
    /// Public addresses only.
    DenyPrivate,
}

/// A destination the policy refuses; `NotifyError`s built from it are permanent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host} is {why}; alerts to private addresses are refused on this server")]
pub struct Denied {
    pub host: String,
    pub why: &'static str,
}

impl Denied {
    fn literal(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            why: "a private, loopback or link-local address",
        }
    }

    fn resolved(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            why: "a name for a private, loopback or link-local address",
        }
    }
}

/// True for every address that is not a public unicast one: loopback, private
/// (RFC 1918, unique local), link-local, shared (CGNAT), unspecified, multicast,
/// broadcast, reserved, benchmarking, and IPv6 forms that embed such an IPv4 address.
pub fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    a == 0 // "this network", 0.0.0.0/8
        || address.is_loopback() // 127.0.0.0/8
        || address.is_private() // 10/8, 172.16/12, 192.168/16
        || address.is_link_local() // 169.254/16, where cloud metadata services live
        || (a == 100 && (64..128).contains(&b)) // shared address space, 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || address.is_multicast() // 224/4
        || a >= 240 // reserved, 240/4, and the broadcast address
}

fn is_private_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let segments = address.segments();
    let embedded = |high: u16, low: u16| {
        Ipv4Addr::new((high >> 8) as u8, high as u8, (low >> 8) as u8, low as u8)
    };
    match segments {
        // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) addresses reach the IPv4
        // address in their last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] | [0, 0, 0, 0, 0, 0, high, low]
            if !address.is_loopback() && !address.is_unspecified() =>
        {
            is_private_v4(embedded(high, low))
        }
        // 6to4 (2002::/16) carries the IPv4 address in its second and third segments.
        [0x2002, high, low, ..] => is_private_v4(embedded(high, low)),
        _ => {
            address.is_unspecified()
                || address.is_loopback()
                || address.is_multicast()
                || address.is_unique_local() // fc00::/7
                || address.is_unicast_link_local() // fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
        }
    }
}

impl AddressPolicy {
    /// Refuses `url` if its host is an IP address, written out, that is private. A
    /// name is checked when it is resolved ([`PublicOnly`]); an address written out
    /// never is, so every send checks this.
    pub fn check_url(self, url: &reqwest::Url) -> Result<(), Denied> {
        self.check_host_as_written(url, false)
    }

    /// [`check_url`](Self::check_url) for a channel being created: `localhost` and
    /// its subdomains are refused too, since they can only be loopback.
    pub fn check_new_url(self, url: &reqwest::Url) -> Result<(), Denied> {
        self.check_host_as_written(url, true)
    }

    fn check_host_as_written(self, url: &reqwest::Url, names_too: bool) -> Result<(), Denied> {
        if self == Self::AllowAll {
            return Ok(());
        }
        // The URL parser has already written an IPv4 address in any of its forms
        // (`0x7f000001`, `2130706433`) as dotted decimal, and put an IPv6 one in [].
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let denied = match bare.parse::<IpAddr>() {
            Ok(address) => is_private(address),
            Err(_) => names_too && is_localhost(bare),
        };
        if denied {
            Err(Denied::literal(bare))
        } else {
            Ok(())
        }
    }

    /// Resolves `host` and refuses it if any of its addresses is private (for a client
    /// that resolves again itself, the SMTP one, every address must pass).
    pub async fn check_host(self, host: &str, port: u16) -> Result<(), CheckFailed> {
        if self == Self::AllowAll {
            return Ok(());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| CheckFailed::Unresolved)?;
        for address in addresses {
            if is_private(address.ip()) {
                return Err(CheckFailed::Denied(Denied::resolved(host)));
            }
        }
        Ok(())
    }
}

/// Why [`AddressPolicy::check_host`] refused.
#[derive(Debug)]
pub enum CheckFailed {
    Denied(Denied),
    /// The name did not resolve (retrying may help).
    Unresolved,
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The HTTP client's resolver under [`AddressPolicy::DenyPrivate`]: the system's
/// resolver, keeping only public addresses. A name with none left fails with
/// [`Denied`], which `alert::describe_http_error` finds in the error's sources.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> =
                found.filter(|address| !is_private(address.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(Denied::resolved(host)) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(text: &str) -> bool {
        is_private(text.parse().expect("an IP address"))
    }

    #[test]
    fn private_loopback_link_local_and_their_ipv6_disguises_are_private() {
        for address in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(private(address), "{address} must be private");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_for_loopback_only() {
        let name: Name = "localhost".parse().expect("a name");
        let error = match PublicOnly.resolve(name).await {
            Ok(found) => panic!("resolved to {:?}", found.collect::<Vec<_>>()),
            Err(error) => error,
        };
        assert_eq!(
            error.downcast_ref::<Denied>(),
            Some(&Denied::resolved("localhost"))
        );
    }

    #[test]
    fn public_addresses_are_not_private() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!private(address), "{address} must be public");
        }
    }

    #[test]
    fn urls_with_a_private_host_written_out_are_refused_only_when_denying() {
        let check = |policy: AddressPolicy, url: &str| {
            policy.check_new_url(&reqwest::Url::parse(url).expect("a URL"))
        };
        for url in [
            "http://127.0.0.1:9093/",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/x",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://localhost:8080/",
            "http://api.LOCALHOST./",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(
                check(AddressPolicy::DenyPrivate, url).is_err(),
                "{url} must be refused"
            );
            assert_eq!(check(AddressPolicy::AllowAll, url), Ok(()), "{url}");
        }
        for url in ["https://hooks.slack.com/services/x", "http://8.8.8.8/"] {
            assert_eq!(check(AddressPolicy::DenyPrivate, url), Ok(()), "{url}");
        }
        // At send time a name is left to the resolver.
        let localhost = reqwest::Url::parse("http://localhost:8080/").expect("a URL");
        assert_eq!(AddressPolicy::DenyPrivate.check_url(&localhost), Ok(()));
    }
}
