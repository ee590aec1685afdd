//! Who is watching: a keyed hash of the viewer's cookie, or of their network and browser.
//!
//! The `kino_vid` cookie is random and says nothing by itself; its HMAC is the viewer key.
//! A request without the cookie is keyed by HMAC(IP prefix + User-Agent), gets a new cookie, and
//! the new cookie is remembered as an alias of that key for a while, so the requests before and
//! after the browser stores the cookie belong to one session instead of two viewers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use ring::hmac;

/// The cookie's name.
pub(crate) const COOKIE: &str = "kino_vid";
/// A cookie value is 16 random bytes, base64url without padding.
const COOKIE_LEN: usize = 22;
/// How long the browser keeps the cookie.
const COOKIE_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A viewer's pseudonymous identity: 128 bits of HMAC-SHA256, never reversible to an IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ViewerKey([u8; 16]);

impl ViewerKey {
    /// HMAC(secret, `domain` ‖ `value`), truncated to 128 bits.
    pub(crate) fn derive(secret: &hmac::Key, domain: &str, value: &[u8]) -> Self {
        let mut context = hmac::Context::with_key(secret);
        context.update(domain.as_bytes());
        context.update(&[0]);
        context.update(value);
        let tag = context.sign();
        let mut key = [0u8; 16];
        key.copy_from_slice(&tag.as_ref()[..16]);
        Self(key)
    }

    /// Lowercase hex, as stored.
    pub(crate) fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// How a request identified its viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// A well-formed `kino_vid` cookie came with the request.
    Cookie(String),
    /// No cookie: keyed by network and browser; `new_cookie` is to be set on the response.
    Network {
        /// The fallback key.
        key: ViewerKey,
        /// The fresh cookie value.
        new_cookie: String,
    },
}

/// Reads the viewer's identity from a request.
pub(crate) fn identify(secret: &hmac::Key, headers: &HeaderMap, remote: Option<SocketAddr>) -> Identity {
    if let Some(value) = cookie(headers) {
        return Identity::Cookie(value);
    }
    let agent = headers.get(header::USER_AGENT).map(HeaderValue::as_bytes).unwrap_or_default();
    let mut material = remote.map(|r| network_prefix(r.ip())).unwrap_or_default().into_bytes();
    material.push(0);
    material.extend_from_slice(agent);
    Identity::Network { key: ViewerKey::derive(secret, "network", &material), new_cookie: new_cookie_value() }
}

/// The key of a cookie value.
pub(crate) fn cookie_key(secret: &hmac::Key, value: &str) -> ViewerKey {
    ViewerKey::derive(secret, "cookie", value.as_bytes())
}

/// The `Set-Cookie` value for a new viewer cookie.
pub(crate) fn set_cookie(value: &str, secure: bool) -> HeaderValue {
    let mut cookie = cookie::Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(COOKIE_MAX_AGE.as_secs() as i64))
        .build();
    cookie.set_secure(secure);
    HeaderValue::from_str(&cookie.to_string()).expect("cookie attributes are valid header text")
}

/// The `kino_vid` cookie, if present and well-formed (anything else is ignored, not trusted).
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| {
            v.len() == COOKIE_LEN && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
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

fn new_cookie_value() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
    fn a_valid_cookie_identifies_the_viewer() {
        let value = new_cookie_value();
        let id = identify(&secret(), &headers(&[("cookie", &format!("a=b; {COOKIE}={value}"))]), None);
        assert_eq!(id, Identity::Cookie(value));
    }

    #[test]
    fn malformed_cookies_fall_back_to_the_network_key() {
        let remote = Some("192.0.2.7:5000".parse().unwrap());
        for bad in ["kino_vid=short", "kino_vid=../../etc/passwd/aaaaaaaa", "other=x"] {
            let id = identify(&secret(), &headers(&[("cookie", bad), ("user-agent", "UA")]), remote);
            assert!(matches!(id, Identity::Network { .. }), "{bad}");
        }
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
