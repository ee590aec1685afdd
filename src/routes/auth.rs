//! API tokens: `POST /api/auth/token` (a password for a pair), `POST /api/auth/refresh` (rotate a
//! refresh token), `POST /api/auth/logout`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::TokenPair;
use crate::error::AppError;
use crate::state::AppState;

/// `POST /api/auth/token`, `POST /api/auth/refresh`, `POST /api/auth/logout`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/token", post(token))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
}

/// `POST /api/auth/token`'s body: the account's sign-in email and password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    email: String,
    password: String,
}

/// The body both endpoints take.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// A JSON body, or the error that says what is wrong with it (415, 400 or 422).
pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    match body {
        Ok(Json(body)) => Ok(body),
        Err(JsonRejection::MissingJsonContentType(e)) => Err(AppError::UnsupportedMediaType(e.body_text())),
        Err(JsonRejection::JsonDataError(e)) => Err(AppError::Unprocessable(e.body_text())),
        Err(e) => Err(AppError::BadRequest(e.body_text())),
    }
}

/// A pair for an email and password; an unknown email and a wrong password get the same 401
/// after the same work (`Accounts::authenticate`). The `auth` rate budget guards it.
async fn token(
    State(state): State<AppState>,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<Json<TokenPair>, AppError> {
    let body = json_body(body)?;
    let user = state.accounts.authenticate(&body.email, &body.password).await?;
    Ok(Json(state.tokens.issue_pair(&user.id).await?))
}

/// A new pair for a refresh token, which is used up; a used one revokes its family (401).
async fn refresh(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Json<TokenPair>, AppError> {
    let body = json_body(body)?;
    Ok(Json(state.tokens.refresh(&body.refresh_token).await?))
}

/// Signs out: every token of the refresh token's family stops working (204).
async fn logout(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let body = json_body(body)?;
    state.tokens.revoke(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
