//! CORS by route class: media for any site's player, the API and tus for the configured origins.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::cors::{self, AllowCredentials, AllowOrigin, Any, Cors, CorsLayer};

use crate::config::CorsConfig;
use crate::middleware::security_headers::RouteClass;

/// Layer that answers preflights and adds the CORS headers of the request's class; the CORS
/// answers of each class are built once from the configuration.
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

impl<S: Clone> Layer<S> for Policy {
    type Service = CorsByClass<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsByClass {
            media: self.0.media.layer(inner.clone()),
            api: self.0.api.as_ref().map(|api| api.layer(inner.clone())),
            plain: inner,
        }
    }
}

/// The service of [`Policy`]: the inner service behind each class's CORS layer, built once.
///
/// A hand-written service rather than `from_fn` with a `CorsLayer` applied per request: that
/// cloned the layer (its `Vary` list is a `Vec`) and the whole inner stack, and boxed three
/// times, on every request, CORS or not. The price: the stack below is held three times, so a
/// clone of the stack clones it thrice (reference counts only; callgrind: ~1 K instructions
/// against the ~4 K saved).
#[derive(Clone)]
pub(crate) struct CorsByClass<S> {
    media: Cors<S>,
    api: Option<Cors<S>>,
    /// Pages and static files: same-origin only, no CORS headers.
    plain: S,
}

impl<S, B, ResBody> Service<Request<B>> for CorsByClass<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    /// Ready when every class's service is: which one a request takes is known only in `call`.
    /// The stack below is always ready (axum's middleware and router), so this waits for nothing.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.media.poll_ready(cx))?;
        if let Some(api) = &mut self.api {
            ready!(api.poll_ready(cx))?;
        }
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let cors = match RouteClass::of(request.uri().path()) {
            RouteClass::Media => Some(&mut self.media),
            RouteClass::Api | RouteClass::Tus => self.api.as_mut(),
            RouteClass::Page | RouteClass::Embed | RouteClass::Static => None,
        };
        match cors {
            Some(cors) => ResponseFuture::Cors { inner: cors.call(request) },
            None => ResponseFuture::Plain { inner: self.plain.call(request) },
        }
    }
}

pin_project! {
    /// The response future of [`CorsByClass`].
    #[project = Projected]
    pub(crate) enum ResponseFuture<F> {
        /// Through a CORS layer.
        Cors { #[pin] inner: cors::ResponseFuture<F> },
        /// Straight from the inner service.
        Plain { #[pin] inner: F },
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Cors { inner } => inner.poll(cx),
            Projected::Plain { inner } => inner.poll(cx),
        }
    }
}
