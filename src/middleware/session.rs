//! Server-side sessions: the session cookie in, a tower-sessions [`Session`] for the request, the
//! cookie out when the session changed.
//!
//! tower-sessions' own `SessionManagerLayer` fixes the cookie's name and `Secure` flag when it
//! is built, but here both depend on the connection: a `__Host-` cookie must be `Secure`
//! (RFC 6265bis §4.1.3.2) and a browser drops a `Secure` cookie set over plain HTTP, so plain
//! HTTP gets `kino_session` without `Secure` and TLS and QUIC get `__Host-kino_session`. The
//! session, its store and its id rotation are tower-sessions'; only this cookie plumbing is ours.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions_core::Session;
use tower_sessions_core::session::{Expiry, Id};

use crate::error::AppError;
use crate::middleware::security_headers::RouteClass;
use crate::peer::{ConnectionInfo, Transport};
use crate::state::AppState;

/// The session cookie over TLS and QUIC: `__Host-` makes browsers insist on `Secure`, `Path=/`
/// and no `Domain`, so no sibling subdomain can plant or overwrite it.
pub(crate) const TLS_COOKIE: &str = "__Host-kino_session";
/// The session cookie over plain HTTP, where a `Secure` (and so a `__Host-`) cookie is refused.
pub(crate) const PLAIN_COOKIE: &str = "kino_session";

/// Whether the request's connection is TLS or QUIC.
pub(crate) fn is_secure(request: &Request) -> bool {
    request.extensions().get::<ConnectionInfo>().is_some_and(|c| c.transport != Transport::Plain)
}

/// Whether the request carries a session cookie (valid or not) for its transport.
pub(crate) fn has_cookie(headers: &HeaderMap, secure: bool) -> bool {
    cookie_value(headers, if secure { TLS_COOKIE } else { PLAIN_COOKIE }).is_some()
}

/// The session id a request's cookie names for its transport; a malformed one is a made-up
/// cookie, treated as none.
pub(crate) fn cookie_id(headers: &HeaderMap, secure: bool) -> Option<Id> {
    cookie_value(headers, if secure { TLS_COOKIE } else { PLAIN_COOKIE }).and_then(|v| v.parse::<Id>().ok())
}

/// Middleware: puts a [`Session`] in the request's extensions (loaded lazily, on first use) and
/// writes the cookie when the handler changed the session: set after a save, removed after a
/// flush. An unchanged session costs no store access, so media requests of a signed-in viewer
/// never touch the sessions table.
pub(crate) async fn manage(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let secure = is_secure(&request);
    let name = if secure { TLS_COOKIE } else { PLAIN_COOKIE };
    let id = cookie_id(request.headers(), secure);
    let had_cookie = id.is_some();
    let ttl = state.config.accounts.session_ttl;
    let expiry = Expiry::OnInactivity(time::Duration::try_from(ttl).unwrap_or(time::Duration::WEEK));
    let session = Session::new(id, state.sessions.clone(), Some(expiry));
    request.extensions_mut().insert(session.clone());
    let page = RouteClass::of(request.uri().path()) == RouteClass::Page;

    let mut response = next.run(request).await;
    let mut cookie = None;
    if session.is_modified() {
        if session.is_empty().await {
            if had_cookie {
                cookie = Some(removal(name, secure));
            }
        } else if !response.status().is_server_error() {
            if let Err(error) = session.save().await {
                return AppError::from(error).into_response();
            }
            if let Some(id) = session.id() {
                cookie = Some(set_cookie(name, &id.to_string(), secure, ttl));
            }
        }
    }
    let headers = response.headers_mut();
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    if page && (had_cookie || headers.contains_key(header::SET_COOKIE)) {
        // The page shows who is signed in (and may carry a cookie): no shared cache may keep it.
        headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("private, no-cache"));
    }
    response
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::cookies::values(headers, name).next()
}

fn cookie(name: &str, value: &str, secure: bool, max_age: cookie::time::Duration) -> HeaderValue {
    let cookie = cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        // Lax: the cookie rides along when a person follows a link to kino from elsewhere, never
        // on another site's form posts or scripts (CSRF's first line; middleware/csrf.rs the second).
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .max_age(max_age)
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("session cookies are valid header text")
}

fn set_cookie(name: &str, id: &str, secure: bool, ttl: std::time::Duration) -> HeaderValue {
    let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    cookie(name, id, secure, cookie::time::Duration::seconds(seconds))
}

fn removal(name: &str, secure: bool) -> HeaderValue {
    cookie(name, "", secure, cookie::time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_prefixed_and_secure_over_tls_only() {
        let tls = set_cookie(TLS_COOKIE, "abc", true, std::time::Duration::from_secs(60));
        let tls = tls.to_str().unwrap();
        assert!(tls.starts_with("__Host-kino_session=abc;"), "{tls}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(tls.contains(attribute), "{attribute} missing: {tls}");
        }
        assert!(!tls.contains("Domain"), "{tls}");
        let plain = set_cookie(PLAIN_COOKIE, "abc", false, std::time::Duration::from_secs(60));
        assert!(!plain.to_str().unwrap().contains("Secure"), "{plain:?}");
        assert!(removal(PLAIN_COOKIE, false).to_str().unwrap().contains("Max-Age=0"));
    }
}
