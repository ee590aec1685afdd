//! `BearerClaims`: the extractor of a verified `Authorization: Bearer` access token.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{Claims, Tokens};
use crate::error::AppError;

/// The claims of the request's valid access token; a handler taking it answers 401 (JSON,
/// `WWW-Authenticate: Bearer`) to a request without one. The rate limiter verifies the token
/// first and leaves these in the request's extensions, so a request pays one verification.
#[derive(Debug, Clone)]
pub(crate) struct BearerClaims(pub(crate) Claims);

/// The token of an `Authorization` value `Bearer <token>` (the scheme in any case); `None` for
/// another scheme or shape.
pub(crate) fn bearer_token(value: &HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

impl<S> FromRequestParts<S> for BearerClaims
where
    S: Send + Sync,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        // Only the rate limiter puts claims there, after verifying this request's header.
        if let Some(verified) = parts.extensions.get::<Self>() {
            return Ok(verified.clone());
        }
        let value = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            AppError::Unauthorized("an Authorization: Bearer access token is required".into())
        })?;
        let token = bearer_token(value)
            .ok_or_else(|| AppError::Unauthorized("the Authorization header is not Bearer <token>".into()))?;
        let tokens = Arc::<Tokens>::from_ref(state);
        let claims =
            tokens.verify(token).map_err(|rejection| AppError::Unauthorized(rejection.to_string()))?;
        Ok(Self(claims))
    }
}
