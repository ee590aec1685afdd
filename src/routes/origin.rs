//! The site's origin as links leaving the page must name it: mailed links, oEmbed and Open Graph.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::config::Config;
use crate::peer::{ConnectionInfo, Transport};
use crate::state::AppState;

/// The origin links to this site start with: `public_url` when set, else the origin this
/// request was addressed to, so the link of `cargo run` on localhost works as printed.
///
/// Without `public_url` the request's `Host` is taken only when it names this machine
/// (`localhost`, a loopback address): anyone may send any `Host`, and a reset link (or an
/// oEmbed answer a chat app caches) pointing at an attacker's site would hand them the token
/// or the viewers. Other hosts get the plain listener's address, with a warning to set
/// `public_url`.
pub(crate) struct LinkBase(pub(crate) String);

impl FromRequestParts<AppState> for LinkBase {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self(link_base(parts, &state.config)))
    }
}

/// Whether the missing `public_url` was reported: every watch page asks, once is enough.
static WARNED: AtomicBool = AtomicBool::new(false);

fn link_base(parts: &Parts, config: &Config) -> String {
    if let Some(url) = config.public_url.as_deref() {
        return url.trim_end_matches('/').to_owned();
    }
    let secure = parts.extensions.get::<ConnectionInfo>().is_some_and(|c| c.transport != Transport::Plain);
    let host = match parts.uri.authority() {
        Some(authority) => Some(authority.as_str()),
        None => parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    };
    match host {
        Some(host) if is_loopback(host) => format!("{}://{host}", if secure { "https" } else { "http" }),
        _ => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(host = ?host, "links to this site go to the plain listener: set public_url to the site's address");
            }
            format!("http://{}", config.http_addr.browser_origin())
        }
    }
}

/// Whether the `host[:port]` of a request names this machine.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_naming_this_machine_count_as_loopback() {
        for host in ["localhost", "LOCALHOST:8080", "127.0.0.1:8443", "127.5.6.7", "[::1]:8443", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "192.0.2.7:80",
            "[2001:db8::1]:443",
            "user@localhost",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
