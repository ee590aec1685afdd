//! Liveness, readiness and metrics for operators and orchestrators.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::state::AppState;

/// `GET /healthz`, `GET /readyz`, `GET /metrics`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The server accepts work: 503 once graceful shutdown has begun, so load balancers drain it.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    if state.shutdown.is_cancelled() {
        return Err(AppError::Unavailable("shutting down"));
    }
    if !state.db.ping().await {
        return Err(AppError::Unavailable("the database does not answer"));
    }
    Ok(Json(json!({ "status": "ready" })))
}

/// Every metric in the Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.stats.render())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use crate::app::router;
    use crate::config::Config;
    use crate::library::Library;
    use crate::state::AppState;
    use crate::views::tracker::Tracker;

    async fn readyz_status(shutdown: &CancellationToken) -> StatusCode {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config::for_tests(dir.path()));
        let library = Arc::new(Library::open(&config).await.unwrap());
        let (sink, _records) = tokio::sync::mpsc::channel(1);
        let views = Tracker::new(config.views.clone(), b"secret", sink);
        let app = router(AppState::new(config, library.db().clone(), library, views, 8443, shutdown.clone()));
        let request = Request::get("/readyz").body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn readiness_fails_once_shutdown_begins() {
        let shutdown = CancellationToken::new();
        assert_eq!(readyz_status(&shutdown).await, StatusCode::OK);
        shutdown.cancel();
        assert_eq!(readyz_status(&shutdown).await, StatusCode::SERVICE_UNAVAILABLE);
    }
}
