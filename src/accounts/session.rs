//! What an account keeps in its session (the user id), sign-in and sign-out on the session, and
//! the extractors that tell a handler who is signed in.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use tower_sessions_core::Session;

use super::{Accounts, User};
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

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    Arc<Accounts>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        // The page chrome and the handler both ask: one lookup per request.
        if let Some(known) = parts.extensions.get::<MaybeUser>() {
            return Ok(known.clone());
        }
        // Next (issue 13): an `Authorization: Bearer` access token is checked here first
        // (`auth::BearerClaims`) and its `sub` looked up with `Accounts::get`; such a request
        // does not read the session (and is not CSRF-checked, see middleware/csrf.rs). Until
        // then only the session signs a request in.
        let user = match parts.extensions.get::<Session>().cloned() {
            Some(session) => match session.get::<String>(USER_ID).await? {
                // An account deleted since sign-in simply signs nobody in.
                Some(id) => Arc::<Accounts>::from_ref(state).get(&id).await?,
                None => None,
            },
            None => None,
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
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match MaybeUser::from_request_parts(parts, state).await? {
            MaybeUser(Some(user)) => Ok(Self(user)),
            MaybeUser(None) => Err(AppError::Unauthorized("sign in first: this needs an account".into())),
        }
    }
}
