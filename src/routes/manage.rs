//! The owner's pages: "My videos" (`GET /me/videos`), and the watch page's edit and delete
//! forms (`POST /watch/{id}` with `_method=PATCH` or `_method=DELETE`, routed by
//! `routes::pages`), each answered with a redirect and a flash message.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions_core::Session;

use crate::accounts::{CurrentUser, MaybeUser};
use crate::error::AppError;
use crate::library::manage;
use crate::page::{Chrome, flash};
use crate::routes::pages::render;
use crate::routes::videos::{manageable, remove_error};
use crate::state::AppState;

/// The most videos "My videos" lists (newest first).
const MY_VIDEOS: u32 = 500;

/// `GET /me/videos`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/me/videos", get(my_videos))
}

/// The watch page's edit form; a field left out stays as it is.
#[derive(Debug, Deserialize)]
pub(crate) struct EditForm {
    title: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
}

/// `PATCH /watch/{id}`: saves the edit and goes back to the watch page with "Saved".
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<EditForm>, FormRejection>,
) -> Result<Response, AppError> {
    manageable(&state, &id, &user, &format!("/watch/{id}")).await?;
    let Form(form) = form?;
    let edit =
        manage::parse_edit(form.title.as_deref(), form.description.as_deref(), form.visibility.as_deref())
            .map_err(AppError::Unprocessable)?;
    state.db.videos().edit(&id, &edit).await?;
    flash::set(&session, "Saved").await?;
    Ok(Redirect::to(&format!("/watch/{id}")).into_response())
}

/// `DELETE /watch/{id}`: deletes the video and goes to "My videos" with "Deleted".
pub(crate) async fn delete_form(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let video = manageable(&state, &id, &user, &format!("/watch/{id}")).await?;
    state.library.remove(&video).await.map_err(remove_error)?;
    flash::set(&session, "Deleted").await?;
    Ok(Redirect::to("/me/videos").into_response())
}

#[derive(Template)]
#[template(path = "my_videos.html")]
struct MyVideosPage {
    chrome: Chrome,
    videos: Vec<MyVideo>,
}

struct MyVideo {
    id: String,
    title: String,
    visibility: &'static str,
    views: i64,
}

/// "My videos": every upload of the signed-in user, whatever its visibility; sign in first.
async fn my_videos(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    chrome: Chrome,
) -> Result<Response, AppError> {
    let Some(user) = user else { return Ok(Redirect::to("/signin").into_response()) };
    let videos = state.db.videos().by_owner(&user.id, MY_VIDEOS).await?;
    let videos = videos
        .into_iter()
        .map(|v| MyVideo {
            id: v.file.id,
            title: v.title,
            visibility: v.visibility.as_str(),
            views: v.view_count,
        })
        .collect();
    Ok(render(&MyVideosPage { chrome, videos })?.into_response())
}
