//! The HTTP client that pushes SETs to receivers, which are untrusted:
//! every delivery has a timeout, answers are read up to a cap, redirects
//! are not followed, no proxy is used, and loopback, link-local, private
//! and other non-public addresses are refused unless the operator allows
//! them (`events.allow_private_receivers`).
//!
//! The address check runs on what the host name resolves to, inside the
//! client's resolver, so the connection goes to an address that was
//! checked: a name that resolves to a public address for a check and to
//! a private one for the connection (DNS rebinding) gets nowhere. A URL
//! naming an IP address directly is checked before the request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address on the public internet: not loopback,
/// private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
/// unspecified, broadcast, multicast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 2001:db8::/32 documentation; 64:ff9b::/96 NAT64 could
                // reach private IPv4 space.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x0064 && v6.segments()[1] == 0xff9b))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 shared address space (RFC 6598).
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking,
        // 240.0.0.0/4 reserved.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240)
}

/// Why a receiver address was refused.
#[derive(Debug, thiserror::Error)]
#[error("receiver address refused: {0} is not a public address (loopback, private and link-local receivers need events.allow_private_receivers)")]
pub struct Refused(pub IpAddr);

/// Resolves host names with the system resolver, keeping only the
/// addresses the policy allows.
#[derive(Debug)]
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| {
                    let ok = allow_private || is_public(a.ip());
                    if !ok {
                        refused = Some(a.ip());
                    }
                    ok
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(ip)) => {
                    Err(Box::new(Refused(ip)) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// Builds the push client: `timeout` for the whole exchange, no
/// redirects, no proxy, addresses checked by the resolver.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("scimd/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .build()
}

/// Checks a URL whose host is an IP address (the resolver is not asked
/// for those).
pub fn check_literal(url: &reqwest::Url, allow_private: bool) -> Result<(), Refused> {
    let literal = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<IpAddr>().ok());
    let Some(ip) = literal else {
        return Ok(());
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Refused(ip))
    }
}

/// The message of `err` and its sources, for the stream's last error
/// (never a secret: the URL's credentials are refused at creation and the
/// Authorization value is never part of an error).
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Reads at most `cap` bytes of `response`'s body.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if body.len() >= cap {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(
                !is_public(refused.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{refused}"
            );
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(
                is_public(allowed.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{allowed}"
            );
        }
    }
}
