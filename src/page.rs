//! The template layer: what every HTML page's layout needs, and the error page.

pub(crate) mod flash;

use askama::Template;
use axum::http::{StatusCode, Version};

use crate::metrics::protocol_label;

/// What every page's layout shows: the stylesheet, who is signed in, the flash message, and the
/// protocol the page came over. Page handlers extract it from the request (`routes::chrome`).
pub(crate) struct Chrome {
    /// The stylesheet's versioned URL.
    pub(crate) stylesheet: String,
    /// "HTTP/2" and the like, shown in the footer; empty to show none.
    pub(crate) protocol: &'static str,
    /// Who is signed in: `Some(Some(name))`, nobody (`Some(None)`), or not known (error pages).
    pub(crate) account: Option<Option<String>>,
    /// The message of the previous action ("Signed in"), shown once.
    pub(crate) flash: Option<String>,
    /// The session's CSRF token for the page's forms; empty without a session.
    pub(crate) csrf: String,
}

impl Chrome {
    /// The layout of a page answered over `version`, knowing nothing of the visitor
    /// (`routes::chrome` fills in the rest from the request).
    pub(crate) fn new(version: Version) -> Self {
        Self {
            stylesheet: crate::assets::url("kino.css"),
            protocol: protocol_label(version),
            account: None,
            flash: None,
            csrf: String::new(),
        }
    }
}

/// The embed page's one inline style, the player filling the frame: inline so the page costs
/// one request in someone else's site; the embed CSP allows it by its SHA-256.
pub(crate) const EMBED_STYLE: &str = "html,body{margin:0;height:100%;background:#000}body{position:relative;overflow:hidden}video{display:block;width:100%;height:100%;object-fit:contain}a.watch{position:absolute;top:.5rem;right:.5rem;padding:.2rem .5rem;border-radius:.3rem;background:rgba(0,0,0,.6);color:#fff;font:14px system-ui,sans-serif;text-decoration:none}";

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    status: StatusCode,
    message: &'a str,
    request_id: &'a str,
}

/// The HTML error page for `status`, saying `message` and the request id.
pub(crate) fn error(status: StatusCode, message: &str, request_id: &str) -> String {
    // No protocol in the footer: an error reads the same over HTTP/1.1, HTTP/2 and HTTP/3.
    let mut chrome = Chrome::new(Version::HTTP_11);
    chrome.protocol = "";
    let page = ErrorPage { chrome, status, message, request_id };
    page.render().unwrap_or_default()
}
