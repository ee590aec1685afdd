//! Routes compiled only for tests (feature `test-routes`): they exercise failure handling, and
//! make what the real routes need before the accounts exist (a token pair for a user id, mail
//! in the outbox) or must refuse (tokens signed with the real key and wrong otherwise).

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{BearerClaims, TokenPair};
use crate::db::outbox::NewMail;
use crate::error::AppError;
use crate::routes::auth::json_body;
use crate::state::AppState;

/// `GET /__test/panic`, `GET /__test/slow`, `POST /__test/auth/pair`, `POST /__test/auth/sign`,
/// `GET /__test/auth/claims`, `POST /__test/mail`, any method on `/__test/method`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/__test/panic", get(panic))
        .route("/__test/slow", get(slow))
        .route("/__test/auth/pair", post(pair))
        .route("/__test/auth/sign", post(sign))
        .route("/__test/auth/claims", get(claims))
        .route("/__test/mail", post(mail))
        .route("/__test/method", any(method))
}

#[derive(Deserialize)]
struct PairFor {
    user_id: String,
}

/// A token pair for a user id with no account behind it, as `/api/auth/token` issues after a password.
async fn pair(
    State(state): State<AppState>,
    body: Result<Json<PairFor>, JsonRejection>,
) -> Result<Json<TokenPair>, AppError> {
    Ok(Json(state.tokens.issue_pair(&json_body(body)?.user_id).await?))
}

#[derive(Deserialize)]
struct Unsigned {
    header: Value,
    claims: Value,
}

/// `header.claims` HMAC'd with the server's token key, whatever they say.
async fn sign(
    State(state): State<AppState>,
    body: Result<Json<Unsigned>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let body = json_body(body)?;
    Ok(Json(json!({ "token": state.tokens.sign_raw(&body.header, &body.claims) })))
}

/// The claims of the request's bearer token: what a protected route would see.
async fn claims(BearerClaims(claims): BearerClaims) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "jti": claims.jti, "exp": claims.exp }))
}

#[derive(Deserialize)]
struct MailFor {
    to: String,
    subject: String,
    body: String,
}

/// Queues a message the way an event does: in a transaction, committed, then the sender woken.
async fn mail(
    State(state): State<AppState>,
    body: Result<Json<MailFor>, JsonRejection>,
) -> Result<Json<Value>, AppError> {
    let body = json_body(body)?;
    let mail = NewMail { kind: "test".into(), to_addr: body.to, subject: body.subject, body_text: body.body };
    let mut tx = state.db.begin().await?;
    let id = state.db.outbox().enqueue_in(&mut tx, &mail).await?;
    tx.commit().await?;
    state.mail.wake();
    Ok(Json(json!({ "id": id })))
}

/// The method the route saw (after method override) and the body length it received intact.
async fn method(method: axum::http::Method, body: Bytes) -> String {
    format!("{method} {}", body.len())
}

async fn panic() -> &'static str {
    panic!("a handler bug, on purpose")
}

#[derive(Deserialize)]
struct Slow {
    chunks: u32,
    delay_ms: u64,
}

/// Streams `chunks` lines, one every `delay_ms`: an in-flight response shutdown must finish.
async fn slow(Query(slow): Query<Slow>) -> Body {
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i == slow.chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(slow.delay_ms)).await;
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(format!("chunk {i}\n"))), i + 1))
    });
    Body::from_stream(stream)
}
