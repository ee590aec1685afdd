//! The client's address: the peer's, or what a trusted proxy says it forwarded.
//!
//! `X-Forwarded-For` and `Forwarded` are written by whoever sends the request, so they are
//! believed only from a peer in `trust_proxies`, and then only as far back as the chain of
//! trusted proxies goes: the right-most address that is not a trusted proxy is the client
//! (the left of it could be anything the client wrote).

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use ipnet::IpNet;

/// The address a request is attributed to (rate limits, logs); a request extension set by the
/// rate-limit middleware, which is left out of the stack when every budget is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The client address of a request that arrived from `peer` with `headers`.
pub(crate) fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // RFC 7239 `Forwarded` is the standard; a proxy that writes it is believed over the
    // de-facto `X-Forwarded-For`.
    let hops: Vec<Option<IpAddr>> = if headers.contains_key(http::header::FORWARDED) {
        values(headers, http::header::FORWARDED.as_str()).flat_map(forwarded_for).collect()
    } else {
        values(headers, "x-forwarded-for").map(|hop| hop.parse().ok()).collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // A hop a trusted proxy wrote that is not an address (`unknown`, an obfuscated name):
        // nothing further left can be believed, so the last trusted hop is the client.
        let Some(hop) = hop.map(canonical) else { break };
        client = hop;
        if !is_trusted(hop, trusted) {
            break;
        }
    }
    client
}

/// The key a client's budget is counted under: an IPv4 address, or the /64 of an IPv6 one,
/// since one host is routinely given a whole /64 to pick addresses from.
pub(crate) fn bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Whether `ip` is one of the proxies whose forwarding headers are believed.
pub(crate) fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from dual-stack sockets) as the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Every comma-separated element of every `name` header, in order.
fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
}

/// The `for=` node of one `Forwarded` element (RFC 7239 §4, §6): `for=192.0.2.1`,
/// `for="[2001:db8::1]:4711"`, `for=unknown`; `None` when it is not an address.
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    let node = element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })?;
    let address = match node.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(address, _port)| address),
        // An IPv4 address may carry a port; a bare IPv6 one is not valid here but is taken.
        None if node.matches(':').count() == 1 => node.split_once(':').map_or(node, |(a, _)| a),
        None => node,
    };
    Some(address.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(resolve(ip("203.0.113.9"), &spoofed, &proxies()), ip("203.0.113.9"));
        assert_eq!(resolve(ip("203.0.113.9"), &spoofed, &[]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_chain_yields_the_right_most_untrusted_hop() {
        // The client wrote 6.6.6.6 itself; 198.51.100.7 is what the first trusted proxy saw.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7"), ("x-forwarded-for", "10.1.1.1")]);
        assert_eq!(resolve(ip("10.0.0.2"), &chain, &proxies()), ip("198.51.100.7"));
        assert_eq!(resolve(ip("10.0.0.2"), &HeaderMap::new(), &proxies()), ip("10.0.0.2"));
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(resolve(ip("10.0.0.2"), &all_trusted, &proxies()), ip("10.9.9.9"));
        let garbage = headers(&[("x-forwarded-for", "198.51.100.7, bogus")]);
        assert_eq!(resolve(ip("10.0.0.2"), &garbage, &proxies()), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_nodes_parse_with_ports_quotes_and_ipv6() {
        let forwarded = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https"#)]);
        assert_eq!(resolve(ip("::1"), &forwarded, &proxies()), ip("2001:db8::1"));
        let v4_port = headers(&[("forwarded", "for=192.0.2.60:8080;by=10.0.0.1")]);
        assert_eq!(resolve(ip("::ffff:10.0.0.3"), &v4_port, &proxies()), ip("192.0.2.60"));
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(resolve(ip("10.0.0.3"), &unknown, &proxies()), ip("10.0.0.3"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
