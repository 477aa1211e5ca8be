//! The SSRF guard for callback URLs: a client names the URL, so without a guard a webhook
//! could make Ferry reach its own loopback, the cloud metadata endpoint or the private network.
//!
//! [`check_url`] accepts only `http`/`https` URLs with a host and without credentials.
//! [`resolve_allowed`] resolves the host once and refuses it if any of its addresses is
//! internal (private, loopback, link-local, unspecified, multicast, broadcast, carrier-grade
//! NAT, or an IPv6 form of those), unless private addresses are allowed in configuration. The
//! caller must then connect to exactly the addresses returned, never resolve the name again:
//! a second lookup could answer differently (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// The most addresses of one host that are checked and kept; a host with more is still
/// reached through the first ones.
const MAX_ADDRS: usize = 16;

/// Why a callback URL is refused or cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("the callback URL is not a valid URL: {0}")]
    Invalid(String),
    /// A scheme other than `http` and `https`.
    #[error("the callback URL must be http or https, not {0}")]
    Scheme(String),
    /// No host to connect to.
    #[error("the callback URL has no host")]
    NoHost,
    /// A user name or password in the URL (they would be sent as Basic credentials).
    #[error("the callback URL must not contain a user name or password")]
    Credentials,
    /// The host name did not resolve (possibly a passing DNS failure).
    #[error("the callback host {host} did not resolve: {reason}")]
    Unresolvable {
        /// The host name.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The host is, or resolves to, an address Ferry does not call.
    #[error(
        "the callback host {host} is at {addr}, an internal address; set webhooks.allow_private to allow it"
    )]
    Forbidden {
        /// The host as written in the URL.
        host: String,
        /// The first internal address found.
        addr: IpAddr,
    },
}

impl UrlError {
    /// Whether a later attempt might succeed (a DNS failure); every other error is final.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unresolvable { .. })
    }
}

/// Parses a callback URL: `http` or `https`, with a host, without credentials.
pub fn check_url(url: &str) -> Result<Url, UrlError> {
    let url = Url::parse(url).map_err(|error| match error {
        url::ParseError::EmptyHost => UrlError::NoHost,
        other => UrlError::Invalid(other.to_string()),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(url.scheme().to_owned()));
    }
    if url.host().is_none() {
        return Err(UrlError::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    Ok(url)
}

/// Resolves the host of a URL from [`check_url`] and returns the addresses to connect to,
/// refusing the host if any of them is internal, unless `allow_private`.
pub async fn resolve_allowed(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, UrlError> {
    let port = url.port_or_known_default().ok_or(UrlError::NoHost)?;
    let addrs = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(Host::Domain(domain)) => lookup(domain, port).await?,
        None => return Err(UrlError::NoHost),
    };
    let host = url.host_str().unwrap_or_default();
    refuse_internal(host, addrs, allow_private)
}

/// The first [`MAX_ADDRS`] addresses of `domain`.
async fn lookup(domain: &str, port: u16) -> Result<Vec<SocketAddr>, UrlError> {
    let unresolvable = |reason: String| UrlError::Unresolvable {
        host: domain.to_owned(),
        reason,
    };
    let found = tokio::net::lookup_host((domain, port))
        .await
        .map_err(|error| unresolvable(error.to_string()))?;
    let addrs: Vec<SocketAddr> = found.take(MAX_ADDRS).collect();
    if addrs.is_empty() {
        return Err(unresolvable("no addresses".to_owned()));
    }
    Ok(addrs)
}

/// Passes `addrs` through unless one of them is internal and private addresses are not allowed.
fn refuse_internal(
    host: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, UrlError> {
    if allow_private {
        return Ok(addrs);
    }
    match addrs.iter().find(|addr| is_internal(addr.ip())) {
        Some(addr) => Err(UrlError::Forbidden {
            host: host.to_owned(),
            addr: addr.ip(),
        }),
        None => Ok(addrs),
    }
}

/// Whether `ip` belongs to the host itself or a network behind it rather than the internet.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => is_internal_v6(ip),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [first, second, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        // 0.0.0.0/8, "this network": Linux delivers a connection to 0.x.x.x to the host itself.
        || first == 0
        // 100.64.0.0/10, carrier-grade NAT: shared with the provider's other customers.
        || (first == 100 && second & 0xc0 == 64)
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, which also covers :: and
    // ::1) addresses reach the IPv4 host: judge them as IPv4.
    if let Some(v4) = ip.to_ipv4() {
        return is_internal_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_and_public_ones_are_not() {
        let table: &[(&str, bool)] = &[
            ("10.0.0.1", true),
            ("10.255.255.255", true),
            ("172.16.0.1", true),
            ("172.31.255.254", true),
            ("172.32.0.1", false),
            ("172.15.255.255", false),
            ("192.168.1.1", true),
            ("192.169.0.1", false),
            ("127.0.0.1", true),
            ("127.10.20.30", true),
            ("169.254.169.254", true),
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("255.255.255.255", true),
            ("100.64.0.1", true),
            ("100.127.255.254", true),
            ("100.63.255.255", false),
            ("100.128.0.1", false),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::1", true),
            ("::", true),
            ("fc00::1", true),
            ("fd12:3456:789a::1", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", false),
            ("ff02::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("::127.0.0.1", true),
            ("2001:4860:4860::8888", false),
            ("2606:2800:220:1::1", false),
        ];
        for (text, internal) in table {
            let ip: IpAddr = match text.parse() {
                Ok(ip) => ip,
                Err(error) => panic!("{text} is not an address: {error}"),
            };
            assert_eq!(is_internal(ip), *internal, "{text}");
        }
    }

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted() {
        for url in [
            "http://example.com/hook",
            "https://example.com:8443/hook?x=1",
            "https://[2001:db8::1]/hook",
        ] {
            assert!(check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn urls_of_other_schemes_without_a_host_or_with_credentials_are_refused() {
        let table: &[(&str, UrlError)] = &[
            ("ftp://example.com/x", UrlError::Scheme("ftp".into())),
            ("file:///etc/passwd", UrlError::Scheme("file".into())),
            ("gopher://example.com/", UrlError::Scheme("gopher".into())),
            ("mailto:a@example.com", UrlError::Scheme("mailto".into())),
            ("http://", UrlError::NoHost),
            ("https:///", UrlError::NoHost),
            ("http://user:pass@example.com/", UrlError::Credentials),
            ("http://user@example.com/", UrlError::Credentials),
            ("https://:secret@example.com/", UrlError::Credentials),
        ];
        for (url, expected) in table {
            assert_eq!(check_url(url).err().as_ref(), Some(expected), "{url}");
        }
        assert!(matches!(check_url("not a url"), Err(UrlError::Invalid(_))));
    }

    async fn resolve(url: &str, allow_private: bool) -> Result<Vec<SocketAddr>, UrlError> {
        resolve_allowed(&check_url(url)?, allow_private).await
    }

    #[tokio::test]
    async fn address_literals_in_any_spelling_are_judged_by_the_address() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1:8443/",
        ] {
            assert!(
                matches!(resolve(url, false).await, Err(UrlError::Forbidden { .. })),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_private_is_allowed() {
        let refused = resolve("http://localhost:9/", false).await;
        assert!(
            matches!(refused, Err(UrlError::Forbidden { ref host, .. }) if host == "localhost"),
            "{refused:?}"
        );
        let allowed = resolve("http://localhost:9/", true).await;
        assert!(
            allowed.is_ok_and(|addrs| !addrs.is_empty() && addrs.iter().all(|a| a.port() == 9))
        );
    }

    #[tokio::test]
    async fn a_public_literal_is_returned_with_the_scheme_default_port() {
        let addrs = resolve("https://93.184.216.34/hook", false).await;
        assert_eq!(addrs, Ok(vec![SocketAddr::from(([93, 184, 216, 34], 443))]));
    }

    #[test]
    fn only_a_dns_failure_is_transient() {
        let dns = UrlError::Unresolvable {
            host: "x".into(),
            reason: "y".into(),
        };
        assert!(dns.is_transient());
        assert!(!UrlError::NoHost.is_transient());
        assert!(
            !UrlError::Forbidden {
                host: "x".into(),
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            .is_transient()
        );
    }
}
