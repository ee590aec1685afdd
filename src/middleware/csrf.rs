//! CSRF protection for requests that ride on a session: the request must come from this site
//! (its `Origin`, else its `Referer`) and carry the session's token (`_csrf` form field or
//! `X-CSRF-Token` header). Both, because each covers the other's gap: old browsers and some
//! privacy tools drop `Origin`, and a token alone does not stop a login form planted elsewhere.
//!
//! Requests without a live session are not checked. CSRF borrows the authority a browser
//! attaches by itself, and the only such authority kino has is the session cookie: an anonymous
//! upload, a tus client or a bearer-token client has nothing a forged request
//! could borrow, and a check would only break them. A cookie that names no live session (signed
//! out, expired) carries no authority either, so it counts as none.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_sessions_core::Session;

use crate::error::AppError;
use crate::middleware::form;
use crate::middleware::session::{has_cookie, is_secure};
use crate::state::AppState;

/// The form field that carries the token.
pub(crate) const FIELD: &str = "_csrf";
/// The header that carries the token on JSON and other non-form requests.
pub(crate) const HEADER: &str = "x-csrf-token";
/// The session key of the token.
const KEY: &str = "csrf_token";

/// The session's token, made (and the session started) if it has none: pages with forms call it.
pub(crate) async fn token(session: &Session) -> Result<String, AppError> {
    match session.get::<String>(KEY).await? {
        Some(token) => Ok(token),
        None => rotate(session).await,
    }
}

/// A new token for the session (at sign-in, so a token seen before it is worth nothing after).
pub(crate) async fn rotate(session: &Session) -> Result<String, AppError> {
    let token = crate::id::random_id::<32>();
    session.insert(KEY, &token).await?;
    Ok(token)
}

/// Middleware: refuses an unsafe request on a live session unless it comes from this site and
/// carries the session's token (403, saying which).
pub(crate) async fn protect(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    // A request with `Authorization` is signed in by its token alone (`accounts::MaybeUser`
    // ignores the session then): a browser never attaches a token by itself, and no page can
    // set that header without a CORS preflight only the operator's listed origins pass.
    if is_safe(request.method())
        || request.headers().contains_key(header::AUTHORIZATION)
        || !has_cookie(request.headers(), is_secure(&request))
    {
        return Ok(next.run(request).await);
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return Ok(next.run(request).await);
    };
    // Loads the session: only unsafe requests with a session cookie pay this.
    let Some(expected) = session.get::<String>(KEY).await? else {
        if session.is_empty().await {
            return Ok(next.run(request).await);
        }
        return Err(AppError::Forbidden(
            "this session has no security token yet: reload the page and submit the form again".into(),
        ));
    };
    check_origin(&request, &state)?;
    let header = request.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (request, given) = match header {
        Some(token) => (request, Some(token)),
        None if form::is_form_post(&request) => {
            let (request, fields) = form::peek(request).await?;
            (request, fields.csrf.clone())
        }
        None => (request, None),
    };
    let Some(given) = given else {
        return Err(AppError::Forbidden(format!(
            "a signed-in request needs the session's security token: the {FIELD} form field or the \
             X-CSRF-Token header (GET /api/me gives it); reload the page and try again"
        )));
    };
    // BLAKE3 digests compare in constant time: the comparison tells nothing about the token.
    if blake3::hash(given.as_bytes()) != blake3::hash(expected.as_bytes()) {
        return Err(AppError::Forbidden(
            "the security token does not match this session: reload the page and try again".into(),
        ));
    }
    Ok(next.run(request).await)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// The request must name this site in `Origin`, or failing that in `Referer`.
fn check_origin(request: &Request, state: &AppState) -> Result<(), AppError> {
    let own = own_origin(request);
    let headers = request.headers();
    let claimed = match header_text(headers, header::ORIGIN) {
        Some(origin) => origin.to_owned(),
        None => match header_text(headers, header::REFERER) {
            Some(referer) => origin_of(referer).unwrap_or_default(),
            None => {
                return Err(AppError::Forbidden(
                    "a signed-in request must say where it comes from: it has neither an Origin nor a \
                     Referer header"
                        .into(),
                ));
            }
        },
    };
    let config = &state.config;
    let trusted = own.as_deref().is_some_and(|own| own.eq_ignore_ascii_case(&claimed))
        || config.public_url.as_deref().and_then(origin_of).is_some_and(|o| o.eq_ignore_ascii_case(&claimed))
        // Origins the operator let send cookies to the API are trusted on purpose.
        || (config.cors.credentials && config.cors.origins.iter().any(|o| o.eq_ignore_ascii_case(&claimed)));
    if trusted {
        return Ok(());
    }
    Err(AppError::Forbidden(format!(
        "cross-site request refused: it comes from {}, not from {}",
        crate::error::excerpt(if claimed.is_empty() { "an unreadable Referer" } else { &claimed }),
        own.as_deref().unwrap_or("this site")
    )))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `scheme://host[:port]` of this request as the browser addressed it: the scheme of its
/// connection, the authority of its URI (HTTP/2, HTTP/3) or its `Host` header (HTTP/1.1).
fn own_origin(request: &Request) -> Option<String> {
    let scheme = if is_secure(request) { "https" } else { "http" };
    let host = match request.uri().authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => header_text(request.headers(), header::HOST)?.to_owned(),
    };
    Some(format!("{scheme}://{host}"))
}

/// The origin of a URL: `scheme://authority`, nothing after it.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_cut_from_urls() {
        assert_eq!(
            origin_of("https://kino.example:8443/watch/x?y#z").as_deref(),
            Some("https://kino.example:8443")
        );
        assert_eq!(origin_of("http://localhost/").as_deref(), Some("http://localhost"));
        assert_eq!(origin_of("not a url"), None);
        assert_eq!(origin_of("https:///path"), None);
    }
}
