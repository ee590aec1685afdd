//! Security headers for each class of route: a strict policy for pages, `nosniff` everywhere,
//! and HSTS over TLS when a real certificate is configured.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::config::TlsConfig;
use crate::peer::{ConnectionInfo, Transport};

/// What a path serves, which decides the headers its responses get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteClass {
    /// HTML for people: `/`, `/watch/{id}`, `/upload` and the error pages of unknown paths.
    Page,
    /// The bare player of `/embed/{id}`, which other sites may frame.
    Embed,
    /// File bytes for players and `<img>` on any site: `/stream`, `/media`, `/images`, and
    /// `/download`.
    Media,
    /// JSON under `/api` (but tus), `/oembed`, and the machine endpoints `/healthz`, `/readyz`,
    /// `/metrics`.
    Api,
    /// tus resumable uploads under `/api/uploads`.
    Tus,
    /// Versioned stylesheets and other assets under `/static`.
    Static,
}

impl RouteClass {
    /// The class of a request path.
    pub(crate) fn of(path: &str) -> Self {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "stream" | "media" | "images" | "download" => Self::Media,
            "embed" => Self::Embed,
            "api" if path == "/api/uploads" || path.starts_with("/api/uploads/") => Self::Tus,
            "api" | "oembed" | "healthz" | "readyz" | "metrics" => Self::Api,
            "static" => Self::Static,
            _ => Self::Page,
        }
    }
}

/// The pages run no script and load only their own stylesheet, images and media; forms post
/// back to this origin; no other site may frame them (clickjacking).
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The embed page's: the page policy, but any site may frame it, and its one inline style (the
/// player filling the frame; `page::EMBED_STYLE`, hashed) applies. `*` matches every http(s)
/// origin (CSP3 §7.7.3), so a `data:` or `file:` page cannot frame it: those have no origin to
/// allow.
const EMBED_CSP: &str = "default-src 'none'; style-src 'self' 'sha256-rNKGRtgxFcJMjEgTuAkn3exSaS02HZW7vtwE9I5jKjI='; \
    img-src 'self'; media-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors *";
/// The watch page leaks no video id to other sites through `Referer`.
const REFERRER_POLICY: &str = "same-origin";
/// Features the pages never use, switched off for them and anything they might embed.
const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), browsing-topics=()";
/// Two years, the preload list's minimum; no `includeSubDomains`: other hosts of the domain
/// may not speak HTTPS.
const HSTS: &str = "max-age=63072000";

const PERMISSIONS_POLICY_HEADER: HeaderName = HeaderName::from_static("permissions-policy");
const COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");

/// Layer that adds the headers of the request's [`RouteClass`]; a header a handler set itself
/// is kept.
///
/// A hand-written service rather than `from_fn`: it calls the inner service in place and only
/// wraps its future, where `from_fn` clones the whole inner stack and makes three allocations
/// per request — most of this layer's cost in the callgrind profile (`benches/README.md`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecurityHeaders {
    /// Whether HSTS may be sent at all (then only over TLS).
    hsts: bool,
}

impl SecurityHeaders {
    /// The headers `tls` allows.
    pub(crate) fn new(tls: &TlsConfig) -> Self {
        // HSTS pins browsers to HTTPS for years: only with a certificate they trust without an
        // exception, and only over TLS (RFC 6797 §7.2: ignored over plain HTTP anyway).
        Self { hsts: tls.hsts && tls.cert_path.is_some() }
    }
}

impl<S> Layer<S> for SecurityHeaders {
    type Service = SetSecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetSecurityHeaders { inner, hsts: self.hsts }
    }
}

/// The service of [`SecurityHeaders`].
#[derive(Debug, Clone)]
pub(crate) struct SetSecurityHeaders<S> {
    inner: S,
    hsts: bool,
}

impl<S, B, ResBody> Service<Request<B>> for SetSecurityHeaders<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let class = RouteClass::of(request.uri().path());
        let secure =
            request.extensions().get::<ConnectionInfo>().is_some_and(|c| c.transport != Transport::Plain);
        ResponseFuture { inner: self.inner.call(request), class, hsts: self.hsts && secure }
    }
}

pin_project! {
    /// The response future of [`SetSecurityHeaders`]: the inner one, then the headers.
    pub(crate) struct ResponseFuture<F> {
        #[pin]
        inner: F,
        class: RouteClass,
        hsts: bool,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        apply(response.headers_mut(), *this.class, *this.hsts);
        Poll::Ready(Ok(response))
    }
}

fn apply(headers: &mut HeaderMap, class: RouteClass, hsts: bool) {
    let mut add = |name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    // Every class: a JSON error, a video or a stylesheet is never run as something else.
    add(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    match class {
        RouteClass::Page => {
            add(header::CONTENT_SECURITY_POLICY, PAGE_CSP);
            add(header::X_FRAME_OPTIONS, "DENY");
            add(header::REFERRER_POLICY, REFERRER_POLICY);
            add(PERMISSIONS_POLICY_HEADER, PERMISSIONS_POLICY);
            add(COOP, "same-origin");
        }
        // No `X-Frame-Options`: `frame-ancestors` replaces it where supported, and its `DENY`
        // would win in browsers that know only it. No COOP: it is ignored in a frame.
        RouteClass::Embed => {
            add(header::CONTENT_SECURITY_POLICY, EMBED_CSP);
            add(header::REFERRER_POLICY, REFERRER_POLICY);
            add(PERMISSIONS_POLICY_HEADER, PERMISSIONS_POLICY);
        }
        RouteClass::Media | RouteClass::Api | RouteClass::Tus | RouteClass::Static => {}
    }
    if hsts {
        add(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}

#[cfg(test)]
mod tests {
    use super::RouteClass::{self, *};

    #[test]
    fn paths_fall_into_their_class() {
        for (path, class) in [
            ("/", Page),
            ("/watch/abc", Page),
            ("/upload", Page),
            ("/no/such/page", Page),
            ("/stream/abc.mp4", Media),
            ("/media/sample.webm", Media),
            ("/images/abc", Media),
            ("/download/abc", Media),
            ("/embed/abc", Embed),
            ("/embedx", Page),
            ("/oembed", Api),
            ("/api/videos", Api),
            ("/api/uploadsx", Api),
            ("/metrics", Api),
            ("/api/uploads", Tus),
            ("/api/uploads/abc", Tus),
            ("/static/kino.css", Static),
        ] {
            assert_eq!(RouteClass::of(path), class, "{path}");
        }
    }

    #[test]
    fn the_embed_policy_allows_exactly_the_embed_pages_style() {
        use base64::Engine;
        let digest = ring::digest::digest(&ring::digest::SHA256, crate::page::EMBED_STYLE.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        assert!(super::EMBED_CSP.contains(&format!(" 'sha256-{hash}';")), "{hash}");
    }
}
