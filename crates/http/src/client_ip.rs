//! The client's address: the TCP peer, unless the peer is a trusted proxy,
//! in which case the proxy's `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! header says who it forwarded. Headers from untrusted peers are ignored:
//! anyone can write them.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let chain = forwarded_chain(headers);
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

/// Addresses from `Forwarded: for=…` if present, else `X-Forwarded-For`,
/// in header order (client first). Unparseable entries (e.g. `unknown`)
/// end the chain there.
fn forwarded_chain(headers: &HeaderMap) -> Vec<IpAddr> {
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
    let forwarded: Vec<String> = values("forwarded")
        .into_iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| v.trim().trim_matches('"').to_owned())
            })
        })
        .collect();
    let entries = if forwarded.is_empty() {
        values("x-forwarded-for")
    } else {
        forwarded
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

    #[test]
    fn untrusted_peers_cannot_claim_another_address() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(
            client_ip(peer("9.9.9.9"), &h, &[]),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer("9.9.9.9"), &h, &["10.0.0.0/8".parse().unwrap()]),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 1.2.3.4, 10.0.0.7")]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "the forged left-most entry is ignored"
        );
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.9",
        )]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("x-forwarded-for", "garbage, 5.5.5.5")]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &trusted),
            "5.5.5.5".parse::<IpAddr>().unwrap()
        );
    }
}
