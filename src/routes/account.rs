//! Accounts over HTTP: the sign-up, sign-in and account pages with their forms, and the JSON
//! API (`POST /api/users`, `POST`/`DELETE /api/session`, `GET /api/me`).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions_core::Session;

use crate::accounts::password::MIN_CHARS;
use crate::accounts::{self, AccountError, Accounts, CurrentUser, MaybeUser, User};
use crate::error::AppError;
use crate::middleware::csrf;
use crate::page::{Chrome, flash};
use crate::routes::chrome::with_csrf;
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
    chrome: Chrome,
    session: Session,
    form: Result<Form<SignUp>, FormRejection>,
) -> Result<Response, AppError> {
    let Form(form) = form?;
    match accounts.sign_up(&form.email, &form.password, form.display_name.as_deref(), None).await {
        Ok(user) => {
            start(&session, &user).await?;
            flash::set(
                &session,
                format!("Welcome, {}: your account is ready and you are signed in.", user.display_name),
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
    session: Session,
    body: Result<Json<SignUp>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(body) = body?;
    let user = accounts.sign_up(&body.email, &body.password, body.display_name.as_deref(), None).await?;
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
