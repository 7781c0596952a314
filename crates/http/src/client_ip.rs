//! The client's address: the TCP peer, unless the peer is a trusted proxy,
//! in which case the proxy's `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! header says who it forwarded. Headers from untrusted peers are ignored:
//! anyone can write them.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Which header the trusted proxies write. Only that one is read: a
/// proxy appends to its own header and passes any other through unchanged,
/// so reading a header the proxy does not write would let the client pick
/// its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

pub(crate) fn client_ip(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let chain = forwarded_chain(headers, header);
    // Walk from the nearest hop back: the first address not one of our
    // proxies is the client; anything further left may be forged.
    let mut client = peer_ip;
    for ip in chain.iter().rev() {
        client = *ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// The addresses in `header`, client first. An unparseable entry (e.g.
/// `unknown`) ends the chain there.
fn forwarded_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<IpAddr> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let entries: Vec<String> = match header {
        ForwardedHeader::XForwardedFor => values("x-forwarded-for"),
        ForwardedHeader::Forwarded => values("forwarded")
            .into_iter()
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (k, v) = pair.trim().split_once('=')?;
                        k.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| v.trim().trim_matches('"').to_owned())
                    })
                    .unwrap_or_default()
            })
            .collect(),
    };
    let mut chain = Vec::new();
    for entry in entries {
        match parse_node(&entry) {
            Some(ip) => chain.push(ip),
            None => chain.clear(),
        }
    }
    chain
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    node.strip_prefix('[')?
        .split(']')
        .next()?
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 4000)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const X: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const F: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(client_ip(peer("9.9.9.9"), &h, &[], X), ip("9.9.9.9"));
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(peer("9.9.9.9"), &h, &trusted, X), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.7")]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted, X),
            ip("1.2.3.4"),
            "the forged left-most entry is ignored"
        );
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.9",
        )]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted, F),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers(&[]), &trusted, X),
            ip("10.0.0.1")
        );
        let h = headers(&[("x-forwarded-for", "garbage, 5.5.5.5")]);
        assert_eq!(client_ip(peer("10.0.0.1"), &h, &trusted, X), ip("5.5.5.5"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // A header the proxy does not write came from the client: ignored.
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("forwarded", "for=1.1.1.1"), ("x-forwarded-for", "7.7.7.7")]);
        assert_eq!(client_ip(peer("10.0.0.1"), &h, &trusted, X), ip("7.7.7.7"));
        assert_eq!(client_ip(peer("10.0.0.1"), &h, &trusted, F), ip("1.1.1.1"));
    }
}
