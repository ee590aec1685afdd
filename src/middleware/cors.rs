//! CORS by route class: media for any site's player, the API and tus for the configured origins.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowCredentials, AllowOrigin, Any, CorsLayer};

use crate::config::CorsConfig;
use crate::middleware::security_headers::RouteClass;

/// The CORS answers of each class, built once from the configuration.
#[derive(Clone)]
pub(crate) struct Policy(Arc<Layers>);

struct Layers {
    media: CorsLayer,
    /// `None` when no origin is configured: the API stays same-origin.
    api: Option<CorsLayer>,
}

/// The tus request headers tus-js-client sends (tus 1.0 core, creation, checksum, concatenation),
/// and `X-HTTP-Method-Override` for its `overridePatchMethod` option.
const TUS_REQUEST_HEADERS: [&str; 8] = [
    "tus-resumable",
    "upload-length",
    "upload-offset",
    "upload-metadata",
    "upload-checksum",
    "upload-defer-length",
    "upload-concat",
    "x-http-method-override",
];

/// What a tus client must read from a cross-origin answer to resume an upload.
const TUS_RESPONSE_HEADERS: [&str; 10] = [
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-expires",
    "upload-defer-length",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "tus-checksum-algorithm",
];

impl Policy {
    /// Builds the layers; `config` was validated (no `*` with credentials), so none panics.
    pub(crate) fn new(config: &CorsConfig) -> Self {
        // Players embedded on other sites read media cross-origin; they must see the range headers.
        let media = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::HEAD])
            .allow_headers([
                header::RANGE,
                header::IF_RANGE,
                header::IF_NONE_MATCH,
                header::IF_MODIFIED_SINCE,
            ])
            .expose_headers([
                header::CONTENT_RANGE,
                header::CONTENT_LENGTH,
                header::ACCEPT_RANGES,
                header::ETAG,
            ]);
        let api = (!config.origins.is_empty()).then(|| api_layer(config));
        Self(Arc::new(Layers { media, api }))
    }
}

fn api_layer(config: &CorsConfig) -> CorsLayer {
    let listed: Arc<[HeaderValue]> = config
        .origins
        .iter()
        .filter(|o| *o != "*")
        .map(|o| HeaderValue::from_str(o).expect("checked"))
        .collect();
    let origin =
        if listed.is_empty() { AllowOrigin::any() } else { AllowOrigin::list(listed.iter().cloned()) };
    // tower-http would say `true` to any origin; an unlisted one hears nothing about credentials.
    let credentials = config.credentials;
    let credentials = AllowCredentials::predicate(move |origin, _| credentials && listed.contains(origin));
    let names = |list: &[&'static str]| list.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    let mut allow = names(&TUS_REQUEST_HEADERS);
    // X-CSRF-Token: a listed origin with credentials sends the session's token (middleware/csrf.rs).
    allow.extend([
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static(crate::middleware::csrf::HEADER),
    ]);
    let mut expose = names(&TUS_RESPONSE_HEADERS);
    expose.extend([header::LOCATION, header::RETRY_AFTER, HeaderName::from_static("x-request-id")]);
    CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(credentials)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(allow)
        .expose_headers(expose)
        .max_age(config.max_age)
}

/// Middleware that answers preflights and adds the CORS headers of the request's class.
pub(crate) async fn allow(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    let layer = match RouteClass::of(request.uri().path()) {
        RouteClass::Media => Some(&policy.0.media),
        RouteClass::Api | RouteClass::Tus => policy.0.api.as_ref(),
        RouteClass::Page | RouteClass::Static => None,
    };
    match layer {
        Some(layer) => layer.layer(next).oneshot(request).await.unwrap_or_else(|never| match never {}),
        None => next.run(request).await,
    }
}
