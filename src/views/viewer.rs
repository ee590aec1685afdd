//! Who is watching: a keyed hash of the viewer's cookie, or of their network and browser.
//!
//! The `kino_vid` cookie is a random id signed by the server (HMAC-SHA256 under the secret), so
//! a made-up value is no identity at all: it is treated as no cookie. Its HMAC is the viewer key.
//! A request without a valid cookie is keyed by HMAC(IP prefix + User-Agent), gets a new cookie,
//! and the new cookie is remembered as an alias of that key for a while, so the requests before
//! and after the browser stores the cookie belong to one session instead of two viewers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use ring::hmac;

use crate::peer::{ConnectionInfo, Transport};

/// The cookie's name.
pub(crate) const COOKIE: &str = "kino_vid";
/// A cookie's id is 16 random bytes, base64url without padding; `.` and the tag follow it.
const ID_LEN: usize = 22;
/// The tag: the full HMAC-SHA256 of the id, base64url without padding.
const TAG_LEN: usize = 43;
/// How long the browser keeps the cookie.
const COOKIE_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A viewer's pseudonymous identity: 128 bits of HMAC-SHA256, never reversible to an IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ViewerKey([u8; 16]);

impl ViewerKey {
    /// HMAC(secret, `domain` ‖ `value`), truncated to 128 bits.
    pub(crate) fn derive(secret: &hmac::Key, domain: &str, value: &[u8]) -> Self {
        Self(keyed(secret, domain, value))
    }

    /// Lowercase hex, as stored.
    pub(crate) fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A network prefix (/24 of IPv4, /64 of IPv6) as a keyed hash: what the per-network cap of
/// counted views is kept by, without storing an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NetworkKey([u8; 16]);

impl NetworkKey {
    /// The key of the network `remote` is in; requests without a peer address share one key.
    pub(crate) fn of(secret: &hmac::Key, remote: Option<SocketAddr>) -> Self {
        let prefix = remote.map(|r| cap_prefix(r.ip())).unwrap_or_default();
        Self(keyed(secret, "network-cap", prefix.as_bytes()))
    }
}

/// HMAC(secret, `domain` ‖ 0 ‖ `value`), truncated to 128 bits.
fn keyed(secret: &hmac::Key, domain: &str, value: &[u8]) -> [u8; 16] {
    let mut context = hmac::Context::with_key(secret);
    context.update(domain.as_bytes());
    context.update(&[0]);
    context.update(value);
    let tag = context.sign();
    let mut key = [0u8; 16];
    key.copy_from_slice(&tag.as_ref()[..16]);
    key
}

/// How a request identified its viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A `kino_vid` cookie signed by this server came with the request.
    Cookie(String),
    /// No valid cookie: keyed by network and browser; `new_cookie` is to be set on the response.
    Network {
        /// The fallback key.
        key: ViewerKey,
        /// The fresh cookie value.
        new_cookie: String,
    },
}

/// Reads the viewer's identity from a request.
pub(crate) fn identify(secret: &hmac::Key, headers: &HeaderMap, remote: Option<SocketAddr>) -> Identity {
    if let Some(value) = signed_cookie(secret, headers) {
        return Identity::Cookie(value);
    }
    let agent = headers.get(header::USER_AGENT).map(HeaderValue::as_bytes).unwrap_or_default();
    let mut material = remote.map(|r| network_prefix(r.ip())).unwrap_or_default().into_bytes();
    material.push(0);
    material.extend_from_slice(agent);
    Identity::Network {
        key: ViewerKey::derive(secret, "network", &material),
        new_cookie: new_cookie_value(secret),
    }
}

/// A `Set-Cookie` with a new viewer cookie when the request carries no valid one: pages set it
/// so that the player's first range request already has it. No alias is kept: no media request
/// came before it.
pub(crate) fn cookie_if_absent(secret: &hmac::Key, headers: &HeaderMap, secure: bool) -> Option<HeaderValue> {
    signed_cookie(secret, headers).is_none().then(|| set_cookie(&new_cookie_value(secret), secure))
}

/// [`cookie_if_absent`] for the embed page, framed by other sites: over TLS the cookie is
/// `SameSite=None; Secure; Partitioned`, because a browser neither stores nor sends a `Lax`
/// cookie in a cross-site frame. Partitioned (CHIPS) keeps it to the one embedding site, so it
/// follows no viewer across sites, and browsers that block third-party cookies still keep it.
/// Over plain HTTP `SameSite=None` is refused without `Secure`: the `Lax` cookie is set, and in
/// a cross-site frame the player's requests are keyed by network and browser instead.
pub(crate) fn embedded_cookie_if_absent(
    secret: &hmac::Key,
    headers: &HeaderMap,
    secure: bool,
) -> Option<HeaderValue> {
    signed_cookie(secret, headers).is_none().then(|| build_cookie(&new_cookie_value(secret), secure, secure))
}

/// The key of a cookie value.
pub(crate) fn cookie_key(secret: &hmac::Key, value: &str) -> ViewerKey {
    ViewerKey::derive(secret, "cookie", value.as_bytes())
}

/// Whether a cookie set on this connection may be `Secure`: it came over TLS or QUIC.
pub(crate) fn secure(connection: Option<ConnectionInfo>) -> bool {
    connection.is_some_and(|c| c.transport != Transport::Plain)
}

/// The `Set-Cookie` value for a new viewer cookie.
pub(crate) fn set_cookie(value: &str, secure: bool) -> HeaderValue {
    build_cookie(value, secure, false)
}

/// A viewer cookie's `Set-Cookie`; `framed` (only with `secure`) for one sent in other sites'
/// frames.
fn build_cookie(value: &str, secure: bool, framed: bool) -> HeaderValue {
    let same_site = if framed { cookie::SameSite::None } else { cookie::SameSite::Lax };
    let mut cookie = cookie::Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .max_age(cookie::time::Duration::seconds(COOKIE_MAX_AGE.as_secs() as i64))
        .build();
    cookie.set_secure(secure);
    cookie.set_partitioned(framed);
    HeaderValue::from_str(&cookie.to_string()).expect("cookie attributes are valid header text")
}

/// The first `kino_vid` cookie whose tag this server made (anything else is ignored, not
/// trusted: a forged or foreign value is the same as none).
fn signed_cookie(secret: &hmac::Key, headers: &HeaderMap) -> Option<String> {
    crate::cookies::values(headers, COOKIE).find(|v| verify(secret, v))
}

/// Whether `value` is `id.tag` with the tag HMAC(secret, id); the comparison is constant-time.
fn verify(secret: &hmac::Key, value: &str) -> bool {
    let Some((id, tag)) = value.split_once('.') else { return false };
    if id.len() != ID_LEN || tag.len() != TAG_LEN {
        return false;
    }
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else { return false };
    hmac::verify(secret, &tag_message(id), &tag).is_ok()
}

/// What a cookie's tag signs: the id, in its own domain so no other HMAC of the secret matches.
fn tag_message(id: &str) -> Vec<u8> {
    [b"cookie-tag\0".as_slice(), id.as_bytes()].concat()
}

/// The network a per-network cap applies to: the /24 of an IPv4 address (one provider's
/// customer block, so a script cannot rotate through its neighbours), or the /64 of an IPv6 one.
fn cap_prefix(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The part of an address that names a household or a phone: a whole IPv4 address, or the /64
/// of an IPv6 one (devices rotate the rest for privacy).
fn network_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A fresh cookie value: a random id and its tag.
fn new_cookie_value(secret: &hmac::Key) -> String {
    let id = crate::id::random_id::<16>();
    let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hmac::sign(secret, &tag_message(&id)));
    format!("{id}.{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, b"test secret")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn a_signed_cookie_identifies_the_viewer() {
        let value = new_cookie_value(&secret());
        assert_eq!(value.len(), ID_LEN + 1 + TAG_LEN);
        let id = identify(&secret(), &headers(&[("cookie", &format!("a=b; {COOKIE}={value}"))]), None);
        assert_eq!(id, Identity::Cookie(value));
    }

    #[test]
    fn malformed_forged_and_foreign_cookies_fall_back_to_the_network_key() {
        let remote = Some("192.0.2.7:5000".parse().unwrap());
        let genuine = new_cookie_value(&secret());
        let (id, tag) = genuine.split_once('.').unwrap();
        let other_server = new_cookie_value(&hmac::Key::new(hmac::HMAC_SHA256, b"another server"));
        let forged = [
            "short".to_owned(),
            "../../etc/passwd/aaaaaaaa".to_owned(),
            "viewer0000000000000001".to_owned(),
            format!("{id}.{}", "A".repeat(TAG_LEN)),
            format!("{}.{tag}", "B".repeat(ID_LEN)),
            format!("{id}.{tag}A"),
            format!("{id}{tag}"),
            other_server,
        ];
        for bad in forged {
            let cookie = format!("{COOKIE}={bad}");
            let id = identify(&secret(), &headers(&[("cookie", &cookie), ("user-agent", "UA")]), remote);
            assert!(matches!(id, Identity::Network { .. }), "{bad}");
            assert!(cookie_if_absent(&secret(), &headers(&[("cookie", &cookie)]), false).is_some(), "{bad}");
        }
        let other = identify(&secret(), &headers(&[("cookie", "other=x")]), remote);
        assert!(matches!(other, Identity::Network { .. }));
        let both = format!("{COOKIE}=forged; {COOKIE}={genuine}");
        assert_eq!(identify(&secret(), &headers(&[("cookie", &both)]), remote), Identity::Cookie(genuine));
    }

    #[test]
    fn a_new_cookie_is_signed_and_accepted() {
        let Identity::Network { new_cookie, .. } = identify(&secret(), &HeaderMap::new(), None) else {
            panic!("no cookie came");
        };
        assert!(verify(&secret(), &new_cookie), "{new_cookie}");
        let cookie = format!("{COOKIE}={new_cookie}");
        assert_eq!(cookie_if_absent(&secret(), &headers(&[("cookie", &cookie)]), true), None);
    }

    #[test]
    fn the_network_cap_key_covers_a_slash_24_and_a_slash_64() {
        let key = |addr: &str| NetworkKey::of(&secret(), Some(addr.parse().unwrap()));
        assert_eq!(key("192.0.2.7:1"), key("192.0.2.200:2"));
        assert_eq!(key("192.0.2.7:1"), key("[::ffff:192.0.2.9]:3"));
        assert_ne!(key("192.0.2.7:1"), key("192.0.3.7:1"));
        assert_eq!(key("[2001:db8:1:2:aaaa::1]:1"), key("[2001:db8:1:2:bbbb::9]:2"));
        assert_ne!(key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"));
    }

    #[test]
    fn ipv6_devices_in_one_network_share_a_key_and_agents_differ() {
        let key = |addr: &str, agent: &str| match identify(
            &secret(),
            &headers(&[("user-agent", agent)]),
            Some(addr.parse().unwrap()),
        ) {
            Identity::Network { key, .. } => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(key("[2001:db8:1:2:aaaa::1]:1", "UA"), key("[2001:db8:1:2:bbbb::9]:2", "UA"));
        assert_ne!(key("[2001:db8:1:3::1]:1", "UA"), key("[2001:db8:1:2::1]:1", "UA"));
        assert_ne!(key("192.0.2.7:1", "Safari"), key("192.0.2.7:1", "Firefox"));
    }

    #[test]
    fn keys_are_keyed_by_the_secret_and_hide_the_input() {
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another server");
        assert_ne!(cookie_key(&secret(), "abc"), cookie_key(&other, "abc"));
        assert_eq!(cookie_key(&secret(), "abc").hex().len(), 32);
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_on_tls() {
        let value = set_cookie("v", true).to_str().unwrap().to_owned();
        for part in ["kino_vid=v", "HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=31536000"] {
            assert!(value.contains(part), "{value}");
        }
        assert!(!set_cookie("v", false).to_str().unwrap().contains("Secure"));
    }
}
