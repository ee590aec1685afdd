//! The one HTTP error type, its status codes, and how errors are rendered (JSON or HTML).
//!
//! Handlers return [`AppError`]; its response carries an [`ErrorReport`] extension and no body.
//! The [`render`] middleware then writes the body the client can read: JSON under `/api` or when
//! the client asks for JSON, a small HTML page otherwise. Keeping the rendering in one middleware
//! means axum's own 404/405 fallbacks and caught panics look exactly like handler errors.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error a handler can return; mapped to a status code and a public message here only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No route or resource at this path.
    #[error("nothing is at {0}")]
    NotFound(String),
    /// The path exists but not for this method.
    #[error("{0} is not allowed on this path")]
    MethodNotAllowed(Method),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The request needs a signed-in account or a valid token, or its credentials are wrong;
    /// the message says which (401; with `WWW-Authenticate: Bearer` when a token was refused).
    #[error("{0}")]
    Unauthorized(String),
    /// The request is refused whoever sends it (a failed CSRF check); the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// A precondition (`If-Match`, `If-Unmodified-Since`, `If-None-Match` on unsafe methods) failed.
    #[error("a precondition of the request does not hold for the current representation")]
    PreconditionFailed,
    /// No requested range overlaps the representation of this length.
    #[error("none of the requested ranges is inside the {0} bytes of this file")]
    RangeNotSatisfiable(u64),
    /// The request body stalled or arrived too slowly; the message says which limit.
    #[error("{0}")]
    RequestTimeout(String),
    /// The request body is over a size limit; the message says which.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not of a type this endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body parsed but a field is invalid: `field: reason`.
    #[error("{0}")]
    Unprocessable(String),
    /// The client does not speak the tus version we do (412 with `Tus-Version`).
    #[error("this server speaks tus {0}; send Tus-Resumable: {0}")]
    TusVersion(&'static str),
    /// The request conflicts with the resource's state (a tus offset that moved on).
    #[error("{0}")]
    Conflict(String),
    /// The body does not match its checksum (tus checksum extension: status 460).
    #[error("{0}")]
    ChecksumMismatch(String),
    /// The client spent a rate-limit budget (429 with `Retry-After` and `RateLimit`).
    #[error("too many {} requests from this address; try again in {} s", .0.policy, .0.retry_after_secs())]
    TooManyRequests(Throttle),
    /// A feature of a standard this server does not offer (oEmbed's XML format).
    #[error("{0}")]
    NotImplemented(String),
    /// The server is shutting down or not ready.
    #[error("the server is not ready: {0}")]
    Unavailable(&'static str),
    /// A handler panicked; the panic is logged, never sent.
    #[error("the server hit a bug while answering; it has been logged")]
    Panic,
    /// Anything else; the cause is logged, never sent.
    #[error("the server failed to answer; it has been logged")]
    Internal(#[from] anyhow::Error),
}

/// Which budget a refused request spent, and when it refills (draft-ietf-httpapi-ratelimit-headers).
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// The budget's name (`page`, `stream`, `auth`, `upload`).
    pub policy: &'static str,
    /// The requests a full bucket holds.
    pub quota: u32,
    /// How long an empty bucket takes to fill.
    pub window: std::time::Duration,
    /// How long until the next request is allowed.
    pub retry_after: std::time::Duration,
}

impl Throttle {
    /// `retry_after` in whole seconds, rounded up so a client that waits it is let in.
    pub fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.retry_after)
    }
}

/// A duration in whole seconds, rounded up, at least 1 (headers count in seconds).
fn ceil_secs(duration: std::time::Duration) -> u64 {
    duration.as_secs_f64().ceil().max(1.0) as u64
}

/// A database failure is the server's, never the client's: the cause is logged, a 500 sent.
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database"))
    }
}

/// A JSON body axum could not take: no JSON content type (415), not JSON (400), or fields
/// missing or of the wrong type (422); axum's message says which.
impl From<axum::extract::rejection::JsonRejection> for AppError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        body_rejection(rejection.status(), rejection.body_text())
    }
}

/// A form body axum could not take, mapped as [`JsonRejection`](axum::extract::rejection::JsonRejection) is.
impl From<axum::extract::rejection::FormRejection> for AppError {
    fn from(rejection: axum::extract::rejection::FormRejection) -> Self {
        body_rejection(rejection.status(), rejection.body_text())
    }
}

fn body_rejection(status: StatusCode, message: String) -> AppError {
    match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(message),
        StatusCode::UNPROCESSABLE_ENTITY => AppError::Unprocessable(message),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge(message),
        _ => AppError::BadRequest(message),
    }
}

impl AppError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PreconditionFailed | Self::TusVersion(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::ChecksumMismatch(_) => StatusCode::from_u16(460).expect("460 is a valid status"),
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Panic | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::RequestTimeout(_) => "request_timeout",
            Self::PreconditionFailed => "precondition_failed",
            Self::TusVersion(_) => "tus_version",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Conflict(_) => "conflict",
            Self::ChecksumMismatch(_) => "checksum_mismatch",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unprocessable(_) => "unprocessable",
            Self::RangeNotSatisfiable(_) => "range_not_satisfiable",
            Self::TooManyRequests(_) => "rate_limited",
            Self::NotImplemented(_) => "not_implemented",
            Self::Unavailable(_) => "unavailable",
            Self::Panic => "panic",
            Self::Internal(_) => "internal",
        }
    }
}

/// What [`render`] needs to write an error body; attached to error responses as an extension.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReport {
    code: &'static str,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let report = ErrorReport { code: self.code(), message: clip(self.to_string(), MAX_MESSAGE) };
        let mut response = self.status().into_response();
        if let Self::TusVersion(version) = self {
            response.headers_mut().insert("tus-version", HeaderValue::from_static(version));
        }
        if let Self::Unauthorized(_) = self {
            // RFC 6750 §3: the scheme a 401 wants, and that the token presented was refused.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kino\", error=\"invalid_token\""),
            );
        }
        if let Self::Unavailable(_) = self {
            // RFC 9110 §10.2.3: when to try again; a second suits shed load and a draining node.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::TooManyRequests(throttle) = self {
            // RFC 6585 §4, and the IETF draft's structured fields: the policy (quota per window)
            // and what is left of it (nothing, refilled in `t` seconds).
            let retry = throttle.retry_after_secs();
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry));
            let policy =
                format!("\"{}\";q={};w={}", throttle.policy, throttle.quota, ceil_secs(throttle.window));
            let state = format!("\"{}\";r=0;t={retry}", throttle.policy);
            for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
                headers.insert(
                    name,
                    HeaderValue::from_str(&value).expect("a name and digits are a valid header"),
                );
            }
        }
        if let Self::RangeNotSatisfiable(len) = self {
            // RFC 9110 §15.5.17: a 416 says how long the representation is.
            let value = HeaderValue::from_str(&format!("bytes */{len}")).expect("digits are a valid header");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response.extensions_mut().insert(report);
        response
    }
}

/// The longest error message sent, in characters: messages quote client input (a path, a field
/// name), and an error must never echo a megabyte back.
const MAX_MESSAGE: usize = 300;

/// How much of a piece of client input an error message quotes, in characters.
const EXCERPT: usize = 40;

/// `text` cut to `max` characters, with `…` where it was cut.
fn clip(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// Client input as an error message quotes it: debug-quoted (control characters escaped) and cut
/// to a short excerpt.
pub(crate) fn excerpt(input: &str) -> String {
    clip(format!("{:?}", clip(input.to_owned(), EXCERPT)), EXCERPT + 8)
}

/// Fallback for unknown paths.
pub(crate) async fn not_found(request: Request) -> AppError {
    AppError::NotFound(request.uri().path().to_owned())
}

/// Fallback for known paths hit with another method; axum adds the `Allow` header itself.
pub(crate) async fn method_not_allowed(method: Method) -> AppError {
    AppError::MethodNotAllowed(method)
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(Serialize)]
struct JsonErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// Middleware that writes the body of every error response (see the module docs).
pub(crate) async fn render(request: Request, next: Next) -> Response {
    let json = wants_json(&request);
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let response = next.run(request).await;
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let (content_type, body) = if json {
        let body = JsonError {
            error: JsonErrorBody { code: report.code, message: &report.message, request_id: &request_id },
        };
        ("application/json", serde_json::to_vec(&body).unwrap_or_default())
    } else {
        let page = crate::page::error(parts.status, &report.message, &request_id);
        ("text/html; charset=utf-8", page.into_bytes())
    };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body.into())
}

/// API paths (and oEmbed, a JSON API) always get JSON; elsewhere JSON only when the client
/// prefers it to HTML.
fn wants_json(request: &Request) -> bool {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") || path == "/oembed" {
        return true;
    }
    prefers_json(request.headers())
}

/// Whether the client's `Accept` prefers JSON to HTML (an API client on a page's path).
pub(crate) fn prefers_json(headers: &axum::http::HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn statuses_and_codes_match() {
        let cases = [
            (AppError::NotFound("/x".into()), 404, "not_found"),
            (AppError::MethodNotAllowed(Method::DELETE), 405, "method_not_allowed"),
            (AppError::BadRequest("bad".into()), 400, "bad_request"),
            (AppError::Unauthorized("expired".into()), 401, "unauthorized"),
            (AppError::Forbidden("csrf".into()), 403, "forbidden"),
            (AppError::RequestTimeout("slow".into()), 408, "request_timeout"),
            (AppError::PreconditionFailed, 412, "precondition_failed"),
            (AppError::PayloadTooLarge("big".into()), 413, "payload_too_large"),
            (AppError::Conflict("offset".into()), 409, "conflict"),
            (AppError::ChecksumMismatch("sum".into()), 460, "checksum_mismatch"),
            (AppError::UnsupportedMediaType("text".into()), 415, "unsupported_media_type"),
            (AppError::Unprocessable("title: empty".into()), 422, "unprocessable"),
            (AppError::RangeNotSatisfiable(10), 416, "range_not_satisfiable"),
            (AppError::Unavailable("shutting down"), 503, "unavailable"),
            (
                AppError::TooManyRequests(Throttle {
                    policy: "page",
                    quota: 1,
                    window: Duration::from_secs(1),
                    retry_after: Duration::from_millis(10),
                }),
                429,
                "rate_limited",
            ),
            (AppError::Panic, 500, "panic"),
            (AppError::Internal(anyhow::anyhow!("disk on fire")), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status().as_u16(), error.code()), (status, code));
        }
    }

    #[test]
    fn client_input_is_quoted_as_a_short_excerpt() {
        assert_eq!(excerpt("file"), "\"file\"");
        let long = excerpt(&"é".repeat(1 << 20));
        assert!(long.chars().count() <= EXCERPT + 8 && long.ends_with("…\""), "{long}");
        let message = AppError::NotFound("x".repeat(1 << 20)).into_response();
        let report = message.extensions().get::<ErrorReport>().unwrap();
        assert_eq!(report.message.chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn database_errors_are_internal_500s_and_keep_their_cause_private() {
        let error = AppError::from(sqlx::Error::Protocol("password=hunter2".into()));
        assert_eq!((error.status().as_u16(), error.code()), (500, "internal"));
        assert!(!error.to_string().contains("hunter2"));
        assert!(matches!(&error, AppError::Internal(cause) if format!("{cause:#}").contains("hunter2")));
    }

    #[test]
    fn internal_causes_are_not_public() {
        let error = AppError::Internal(anyhow::anyhow!("password=hunter2"));
        assert!(!error.to_string().contains("hunter2"));
    }
}
