//! Server-rendered HTML pages.

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::app::AppState;
use crate::error::AppError;
use crate::metrics::protocol_label;

/// `GET /`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    protocol: &'static str,
}

/// The home page.
async fn home(request: Request) -> Result<impl IntoResponse, AppError> {
    let page = Home { protocol: protocol_label(request.version()) };
    Ok(Html(page.render().map_err(anyhow::Error::from)?))
}
