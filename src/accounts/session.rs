//! What an account keeps in its session (the user id), sign-in and sign-out on the session, and
//! the extractors that tell a handler who is signed in.

use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tower_sessions_core::Session;
use tower_sessions_core::session::Id;

use super::{Accounts, User};
use crate::auth::{BearerClaims, Tokens};
use crate::error::AppError;

/// The session key of the signed-in user's id.
const USER_ID: &str = "user_id";

/// A session read or write failed: the store's problem, never the client's.
impl From<tower_sessions_core::session::Error> for AppError {
    fn from(error: tower_sessions_core::session::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("session store"))
    }
}

/// Signs `user` in on `session`: a new session id first (the old one is deleted), so an id
/// planted before sign-in (session fixation) never becomes a signed-in one.
pub(crate) async fn begin(session: &Session, user: &User) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, &user.id).await?;
    Ok(())
}

/// Signs out: the session is deleted from the store, so its cookie is worthless from now on
/// even if a copy of it survives in a browser or a log. Whatever is put in the session after
/// this (a flash message) goes under a new id, never the old one.
pub(crate) async fn end(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    session.cycle_id().await?;
    Ok(())
}

/// The signed-in user, or a 401 saying to sign in.
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser(pub(crate) User);

/// The signed-in user, if any.
#[derive(Debug, Clone)]
pub(crate) struct MaybeUser(pub(crate) Option<User>);

/// A signed-in user who may upload (uploader or admin): 401 when nobody is signed in, 403 for a
/// viewer.
#[derive(Debug, Clone)]
pub(crate) struct Uploader(pub(crate) User);

/// Who a session cookie turned out to sign in, reported by [`MaybeUser`] to a middleware that
/// runs before any session is loaded (the rate limiter), which puts this in the request's
/// extensions and reads it after the response.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionWitness(Arc<OnceLock<(Option<Id>, Option<String>)>>);

impl SessionWitness {
    /// The session's id when it was read (`None` once sign-in gave it a new one) and its
    /// user's id; `None` when nothing asked who is signed in.
    pub(crate) fn seen(&self) -> Option<(Option<Id>, Option<&str>)> {
        self.0.get().map(|(session, user)| (*session, user.as_deref()))
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    Arc<Accounts>: FromRef<S>,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        // The page chrome and the handler both ask: one lookup per request.
        if let Some(known) = parts.extensions.get::<MaybeUser>() {
            return Ok(known.clone());
        }
        let accounts = Arc::<Accounts>::from_ref(state);
        // A bearer token speaks for the request on its own: the session is not read (and such a
        // request is not CSRF-checked, middleware/csrf.rs). A bad token is a 401, never a quiet
        // fall back to anonymous, so a client learns its token needs refreshing.
        let user = if parts.headers.contains_key(AUTHORIZATION) {
            let BearerClaims(claims) = BearerClaims::from_request_parts(parts, state).await?;
            // A token outlives nothing: an account deleted since it was issued signs nobody in,
            // and neither does one issued before a password reset (which ends every sign-in).
            let user = accounts.get(&claims.sub).await?.ok_or_else(|| {
                AppError::Unauthorized("the token's account no longer exists; sign in again".into())
            })?;
            // `iat` has whole seconds: a token of the reset's own second passes, because the
            // sign-in right after a reset must.
            if user
                .password_changed_at
                .is_some_and(|changed| i64::try_from(claims.iat).unwrap_or(i64::MAX) < changed)
            {
                return Err(AppError::Unauthorized(
                    "the token was issued before the account's password was reset; sign in again".into(),
                ));
            }
            Some(user)
        } else {
            match parts.extensions.get::<Session>().cloned() {
                Some(session) => {
                    let user = match session.get::<String>(USER_ID).await? {
                        // An account deleted since sign-in simply signs nobody in.
                        Some(id) => accounts.get(&id).await?,
                        None => None,
                    };
                    if let Some(witness) = parts.extensions.get::<SessionWitness>() {
                        let _ = witness.0.set((session.id(), user.as_ref().map(|user| user.id.clone())));
                    }
                    user
                }
                None => None,
            }
        };
        let found = MaybeUser(user);
        parts.extensions.insert(found.clone());
        Ok(found)
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Arc<Accounts>: FromRef<S>,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match MaybeUser::from_request_parts(parts, state).await? {
            MaybeUser(Some(user)) => Ok(Self(user)),
            MaybeUser(None) => Err(AppError::Unauthorized("sign in first: this needs an account".into())),
        }
    }
}

impl<S> FromRequestParts<S> for Uploader
where
    S: Send + Sync,
    Arc<Accounts>: FromRef<S>,
    Arc<Tokens>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if !user.may_upload() {
            return Err(AppError::Forbidden(
                "uploading needs the uploader role; ask an admin (kino user role)".into(),
            ));
        }
        Ok(Self(user))
    }
}
