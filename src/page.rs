//! The template layer: what every HTML page's layout needs, and the error page.

use askama::Template;
use axum::http::{StatusCode, Version};

use crate::metrics::protocol_label;

/// What every page's layout shows: the stylesheet URL and the protocol the page came over.
pub(crate) struct Chrome {
    /// The stylesheet's versioned URL.
    pub(crate) stylesheet: String,
    /// "HTTP/2" and the like, shown in the footer; empty to show none.
    pub(crate) protocol: &'static str,
}

impl Chrome {
    /// The layout of a page answered over `version`.
    pub(crate) fn new(version: Version) -> Self {
        Self { stylesheet: crate::assets::url("kino.css"), protocol: protocol_label(version) }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    stylesheet: String,
    protocol: &'static str,
    status: StatusCode,
    message: &'a str,
    request_id: &'a str,
}

/// The HTML error page for `status`, saying `message` and the request id.
pub(crate) fn error(status: StatusCode, message: &str, request_id: &str) -> String {
    // No protocol in the footer: an error reads the same over HTTP/1.1, HTTP/2 and HTTP/3.
    let page =
        ErrorPage { stylesheet: crate::assets::url("kino.css"), protocol: "", status, message, request_id };
    page.render().unwrap_or_default()
}
