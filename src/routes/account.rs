//! Accounts over HTTP: the sign-up, sign-in and account pages with their forms, the mailed
//! links' pages (verify an email, forgot and reset a password), and the JSON API
//! (`POST /api/users`, `POST`/`DELETE /api/session`, `GET /api/me`, `POST /api/account/*`).

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions_core::Session;

use crate::accounts::password::MIN_CHARS;
use crate::accounts::{self, AccountError, Accounts, CurrentUser, LinkError, MaybeUser, User};
use crate::error::AppError;
use crate::middleware::csrf;
use crate::page::{Chrome, flash};
use crate::routes::chrome::with_csrf;
use crate::routes::origin::LinkBase;
use crate::routes::pages::render;
use crate::state::AppState;

/// The account pages and the accounts API.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", get(sign_up_page).post(sign_up_form))
        .route("/signin", get(sign_in_page))
        .route("/session", post(sign_in_form).delete(sign_out_form))
        .route("/account", get(account_page))
        .route("/api/users", post(sign_up_api))
        .route("/api/session", post(sign_in_api).delete(sign_out_api))
        .route("/api/me", get(me))
        .route("/account/verify", get(verify_page))
        .route("/account/verification", post(resend_form))
        .route("/account/forgot", get(forgot_page).post(forgot_form))
        .route("/account/reset", get(reset_page).post(reset_form))
        .route("/api/account/verify", post(verify_api))
        .route("/api/account/verification", post(resend_api))
        .route("/api/account/forgot", post(forgot_api))
        .route("/api/account/reset", post(reset_api))
}

/// A sign-up, from the form or as JSON.
#[derive(Deserialize)]
struct SignUp {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// A sign-in, from the form or as JSON.
#[derive(Deserialize)]
struct SignIn {
    email: String,
    password: String,
}

/// The API's answer about the signed-in user, with the token its unsafe requests must send.
#[derive(Serialize)]
struct Me {
    user: User,
    csrf_token: String,
}

/// Signs `user` in on `session` (new session id, new CSRF token); returns the token.
async fn start(session: &Session, user: &User) -> Result<String, AppError> {
    accounts::session::begin(session, user).await?;
    csrf::rotate(session).await
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage {
    chrome: Chrome,
    error: String,
    email: String,
    display_name: String,
    min_password: usize,
}

async fn sign_up_page(chrome: Chrome, session: Session) -> Result<Response, AppError> {
    let chrome = with_csrf(chrome, &session).await?;
    let page = SignUpPage {
        chrome,
        error: String::new(),
        email: String::new(),
        display_name: String::new(),
        min_password: MIN_CHARS,
    };
    Ok(render(&page)?.into_response())
}

async fn sign_up_form(
    State(accounts): State<Arc<Accounts>>,
    LinkBase(base): LinkBase,
    chrome: Chrome,
    session: Session,
    form: Result<Form<SignUp>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    match accounts.sign_up(&form.email, &form.password, form.display_name.as_deref(), None, Some(&base)).await
    {
        Ok(user) => {
            start(&session, &user).await?;
            flash::set(
                &session,
                format!(
                    "Welcome, {}: your account is ready and you are signed in. We mailed you a link to \
                     confirm your address.",
                    user.display_name
                ),
            )
            .await?;
            Ok(Redirect::to("/account").into_response())
        }
        Err(error @ (AccountError::EmailTaken | AccountError::Invalid(_))) => {
            let status = match error {
                AccountError::EmailTaken => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let chrome = with_csrf(chrome, &session).await?;
            let page = SignUpPage {
                chrome,
                error: error.to_string(),
                email: form.email,
                display_name: form.display_name.unwrap_or_default(),
                min_password: MIN_CHARS,
            };
            Ok((status, render(&page)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    error: String,
    email: String,
}

async fn sign_in_page(chrome: Chrome, session: Session) -> Result<Response, AppError> {
    let chrome = with_csrf(chrome, &session).await?;
    Ok(render(&SignInPage { chrome, error: String::new(), email: String::new() })?.into_response())
}

async fn sign_in_form(
    State(accounts): State<Arc<Accounts>>,
    chrome: Chrome,
    session: Session,
    form: Result<Form<SignIn>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    match accounts.authenticate(&form.email, &form.password).await {
        Ok(user) => {
            start(&session, &user).await?;
            flash::set(&session, format!("Signed in as {}.", user.display_name)).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(AccountError::WrongCredentials) => {
            let chrome = with_csrf(chrome, &session).await?;
            let page = SignInPage { chrome, error: "Wrong email or password.".into(), email: form.email };
            Ok((StatusCode::UNAUTHORIZED, render(&page)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `DELETE /session`, reached from the account page's form through method override.
async fn sign_out_form(session: Session) -> Result<Response, AppError> {
    accounts::session::end(&session).await?;
    flash::set(&session, "Signed out.").await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    display_name: String,
    email: String,
    email_verified: bool,
    role: &'static str,
}

async fn account_page(MaybeUser(user): MaybeUser, chrome: Chrome) -> Result<Response, AppError> {
    let Some(user) = user else { return Ok(Redirect::to("/signin").into_response()) };
    let page = AccountPage {
        chrome,
        display_name: user.display_name,
        email: user.email,
        email_verified: user.email_verified,
        role: user.role.as_str(),
    };
    Ok(render(&page)?.into_response())
}

async fn sign_up_api(
    State(accounts): State<Arc<Accounts>>,
    LinkBase(base): LinkBase,
    session: Session,
    body: Result<Json<SignUp>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(body) = body?;
    let user = accounts
        .sign_up(&body.email, &body.password, body.display_name.as_deref(), None, Some(&base))
        .await?;
    let csrf_token = start(&session, &user).await?;
    Ok((StatusCode::CREATED, Json(Me { user, csrf_token })).into_response())
}

async fn sign_in_api(
    State(accounts): State<Arc<Accounts>>,
    session: Session,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Json<Me>, AppError> {
    let Json(body) = body?;
    let user = accounts.authenticate(&body.email, &body.password).await?;
    let csrf_token = start(&session, &user).await?;
    Ok(Json(Me { user, csrf_token }))
}

async fn sign_out_api(session: Session) -> Result<StatusCode, AppError> {
    accounts::session::end(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(CurrentUser(user): CurrentUser, session: Session) -> Result<Json<Me>, AppError> {
    let csrf_token = csrf::token(&session).await?;
    Ok(Json(Me { user, csrf_token }))
}

/// A link's token, from its query string, a form or a JSON body.
#[derive(Deserialize)]
struct LinkToken {
    #[serde(default)]
    token: String,
}

/// A request for a reset link.
#[derive(Deserialize)]
struct Forgot {
    email: String,
}

/// A new password and the reset link's token.
#[derive(Deserialize)]
struct Reset {
    token: String,
    password: String,
}

/// The page of a link that does nothing (400): why, and where to get a new one.
#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    chrome: Chrome,
    heading: &'static str,
    message: String,
    next_href: &'static str,
    next_text: &'static str,
}

fn link_refused(chrome: Chrome, error: LinkError, reset: bool) -> Result<Response, AppError> {
    let page = LinkPage {
        chrome,
        heading: if reset { "This reset link does not work" } else { "This verification link does not work" },
        message: sentence(&error.to_string()),
        next_href: if reset { "/account/forgot" } else { "/account" },
        next_text: if reset { "Ask for a new reset link" } else { "Send a new link from your account page" },
    };
    Ok((StatusCode::BAD_REQUEST, render(&page)?).into_response())
}

/// An error message (`this link has expired; …`) as a sentence on a page: capital, full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.trim_end_matches('.').chars();
    chars.next().map_or_else(String::new, |first| format!("{}{}.", first.to_uppercase(), chars.as_str()))
}

fn link_token(query: Result<Query<LinkToken>, QueryRejection>) -> Result<String, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    Ok(query.token)
}

/// `GET /account/verify?token=`, the link of the verification mail.
async fn verify_page(
    State(accounts): State<Arc<Accounts>>,
    MaybeUser(user): MaybeUser,
    chrome: Chrome,
    session: Session,
    query: Result<Query<LinkToken>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = link_token(query)?;
    match accounts.verify_email(&token).await {
        Ok(verified) => {
            flash::set(&session, format!("Email verified: {} is confirmed.", verified.email)).await?;
            // The account page of someone signed out would redirect, and that page would take
            // the flash message with it: they go to the sign-in page instead.
            Ok(Redirect::to(if user.is_some() { "/account" } else { "/signin" }).into_response())
        }
        Err(AccountError::Link(error)) => link_refused(chrome, error, false),
        Err(error) => Err(error.into()),
    }
}

/// `POST /account/verification`, the account page's "send the link again" button.
async fn resend_form(
    State(accounts): State<Arc<Accounts>>,
    MaybeUser(user): MaybeUser,
    LinkBase(base): LinkBase,
    session: Session,
) -> Result<Response, AppError> {
    let Some(user) = user else { return Ok(Redirect::to("/signin").into_response()) };
    let message = match accounts.resend_verification(&user, &base).await {
        Ok(()) => format!("We mailed a new link to {}; the earlier one no longer works.", user.email),
        Err(error @ (AccountError::AlreadyVerified | AccountError::TooSoon(_))) => {
            sentence(&error.to_string())
        }
        Err(error) => return Err(error.into()),
    };
    flash::set(&session, message).await?;
    Ok(Redirect::to("/account").into_response())
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    error: String,
    sent: bool,
    email: String,
}

async fn forgot_page(chrome: Chrome, session: Session) -> Result<Response, AppError> {
    let chrome = with_csrf(chrome, &session).await?;
    Ok(render(&ForgotPage { chrome, error: String::new(), sent: false, email: String::new() })?
        .into_response())
}

async fn forgot_form(
    State(accounts): State<Arc<Accounts>>,
    LinkBase(base): LinkBase,
    chrome: Chrome,
    session: Session,
    form: Result<Form<Forgot>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    let chrome = with_csrf(chrome, &session).await?;
    match ask_for_reset(&accounts, form.email.clone(), base) {
        Ok(()) => Ok(render(&ForgotPage { chrome, error: String::new(), sent: true, email: String::new() })?
            .into_response()),
        Err(AccountError::Invalid(error)) => {
            let page = ForgotPage { chrome, error, sent: false, email: form.email };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// Checks the address's shape, then looks it up and mails the link apart from the request: the
/// answer goes out before anything that depends on whether the account exists has run, so
/// neither its words nor its timing tell.
fn ask_for_reset(accounts: &Arc<Accounts>, email: String, base: String) -> Result<(), AccountError> {
    accounts::parse_email(&email)?;
    let accounts = accounts.clone();
    tokio::spawn(async move {
        if let Err(error) = accounts.request_reset(&email, &base).await {
            tracing::warn!(error = %error, "queueing a password reset mail failed");
        }
    });
    Ok(())
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    error: String,
    token: String,
    email: String,
    min_password: usize,
}

/// `GET /account/reset?token=`, the link of the reset mail: the new-password form, if the link
/// still works.
async fn reset_page(
    State(accounts): State<Arc<Accounts>>,
    chrome: Chrome,
    session: Session,
    query: Result<Query<LinkToken>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = link_token(query)?;
    match accounts.reset_link_user(&token).await {
        Ok(user) => {
            let chrome = with_csrf(chrome, &session).await?;
            let page =
                ResetPage { chrome, error: String::new(), token, email: user.email, min_password: MIN_CHARS };
            Ok(render(&page)?.into_response())
        }
        Err(AccountError::Link(error)) => link_refused(chrome, error, true),
        Err(error) => Err(error.into()),
    }
}

async fn reset_form(
    State(accounts): State<Arc<Accounts>>,
    chrome: Chrome,
    session: Session,
    form: Result<Form<Reset>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    match accounts.reset_password(&form.token, &form.password).await {
        Ok(_) => {
            // Every session of the account is gone from the store; this one, if it was one of
            // them, must not be saved back by the flash message below.
            accounts::session::end(&session).await?;
            flash::set(&session, "Password changed; sign in with your new password.").await?;
            Ok(Redirect::to("/signin").into_response())
        }
        Err(AccountError::Link(error)) => link_refused(chrome, error, true),
        Err(AccountError::Invalid(error)) => {
            let email = accounts.reset_link_user(&form.token).await.map(|u| u.email).unwrap_or_default();
            let chrome = with_csrf(chrome, &session).await?;
            let page = ResetPage { chrome, error, token: form.token, email, min_password: MIN_CHARS };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /api/account/verify {token}`: 204 once the email is verified.
async fn verify_api(
    State(accounts): State<Arc<Accounts>>,
    body: Result<Json<LinkToken>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let Json(body) = body?;
    accounts.verify_email(&body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/account/verification`: 202 once a new verification mail is queued.
async fn resend_api(
    State(accounts): State<Arc<Accounts>>,
    CurrentUser(user): CurrentUser,
    LinkBase(base): LinkBase,
) -> Result<StatusCode, AppError> {
    accounts.resend_verification(&user, &base).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/account/forgot {email}`: 202 whether or not the account exists.
async fn forgot_api(
    State(accounts): State<Arc<Accounts>>,
    LinkBase(base): LinkBase,
    body: Result<Json<Forgot>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let Json(body) = body?;
    ask_for_reset(&accounts, body.email, base)?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/account/reset {token, password}`: 204 once the password is changed and every
/// session and refresh token of the account has ended.
async fn reset_api(
    State(accounts): State<Arc<Accounts>>,
    body: Result<Json<Reset>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let Json(body) = body?;
    accounts.reset_password(&body.token, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sentences() {
        assert_eq!(
            sentence("this link has expired; ask for a new one"),
            "This link has expired; ask for a new one."
        );
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
