//! The application: shared state, the router of every area, and the one middleware stack.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{from_fn, from_fn_with_state};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody};

use crate::config::Config;
use crate::images::ImageService;
use crate::ingest::tus::TusStore;
use crate::library::Library;
use crate::metrics::Stats;
use crate::views::tracker::Tracker;
use crate::{error, middleware, routes};

/// State every handler and middleware can reach: one reference count to clone, because every
/// request clones it several times (each stateful middleware and extractor takes its own).
#[derive(Clone)]
pub(crate) struct AppState(Arc<Services>);

/// What [`AppState`] shares.
pub(crate) struct Services {
    /// The validated configuration.
    pub(crate) config: Arc<Config>,
    /// The `Alt-Svc` value naming the real QUIC port.
    pub(crate) alt_svc: HeaderValue,
    /// Cancelled when graceful shutdown begins.
    pub(crate) shutdown: CancellationToken,
    /// Request statistics.
    pub(crate) stats: Arc<Stats>,
    /// The media catalog and roots.
    pub(crate) library: Arc<Library>,
    /// The view tracker.
    pub(crate) views: Arc<Tracker>,
    /// Image storage, workers, memory budget and cache.
    pub(crate) images: Arc<ImageService>,
    /// Resumable uploads in progress.
    pub(crate) tus: Arc<TusStore>,
}

impl AppState {
    pub(crate) fn new(
        config: Arc<Config>,
        library: Arc<Library>,
        views: Arc<Tracker>,
        quic_port: u16,
        shutdown: CancellationToken,
    ) -> Self {
        let alt_svc = HeaderValue::try_from(format!("h3=\":{quic_port}\"; ma=86400"))
            .expect("a port number makes a valid header value");
        let images =
            ImageService::new(&config.data_dir, library.db().pool().clone(), config.images.memory_budget);
        let tus = Arc::new(
            TusStore::new(&config.data_dir, config.limits.upload_expiry).expect("the data dir is writable"),
        );
        let stats = Arc::default();
        Self(Arc::new(Services { config, alt_svc, shutdown, stats, library, views, images, tus }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Builds the router with its middleware; every transport serves this same service.
pub(crate) fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(routes::health::router())
        .merge(routes::pages::router())
        .merge(routes::stream::router())
        .merge(routes::videos::router())
        .merge(routes::views::router())
        .merge(routes::upload::router())
        .merge(routes::images::router())
        .merge(routes::tus::router())
        .merge(crate::assets::router());
    #[cfg(feature = "test-routes")]
    let routes = routes.merge(routes::testing::router());

    // Outermost first: the request id exists before anything logs, the access log sees the
    // final response (rendered errors, caught panics) and counts the bytes that go out after
    // compression, and the body timeout wraps the handlers.
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(middleware::request_id::ProcessCounter))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(from_fn_with_state(state.clone(), middleware::access_log::log))
        .layer(middleware::compression::layer())
        .layer(from_fn(error::render))
        .layer(from_fn(middleware::panic::catch))
        .layer(from_fn_with_state(state.clone(), middleware::alt_svc::advertise))
        .layer(RequestBodyTimeoutLayer::new(state.config.limits.body_idle_timeout))
        .map_request(|request: Request<TimeoutBody<Body>>| request.map(Body::new));

    routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(stack)
        .with_state(state)
}
