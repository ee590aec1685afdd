//! The page chrome of a request: who is signed in, the flash message waiting, the CSRF token of
//! the page's forms.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions_core::Session;

use crate::accounts::MaybeUser;
use crate::error::AppError;
use crate::middleware::csrf;
use crate::page::{Chrome, flash};
use crate::state::AppState;

impl FromRequestParts<AppState> for Chrome {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        let mut chrome = Self::new(parts.version);
        chrome.account = Some(user.map(|u| u.display_name));
        // Only a session the visitor already has is read: viewing a page never starts one.
        if let Some(session) = parts.extensions.get::<Session>().filter(|s| s.id().is_some()).cloned() {
            chrome.flash = flash::take(&session).await?;
            if !session.is_empty().await {
                chrome.csrf = csrf::token(&session).await?;
            }
        }
        Ok(chrome)
    }
}

/// `chrome` with a CSRF token for its forms, starting a session if there is none: the sign-in
/// and sign-up forms, whose posts are then checked like any other (no login CSRF).
pub(crate) async fn with_csrf(mut chrome: Chrome, session: &Session) -> Result<Chrome, AppError> {
    chrome.csrf = csrf::token(session).await?;
    Ok(chrome)
}
