//! Reading the request's cookies: every `Cookie` header, split and parsed by the `cookie`
//! crate, for the session layer and the viewer key alike.

use axum::http::{HeaderMap, header};

/// The values of every cookie called `name`, in the order the client sent them; malformed
/// pairs and non-text headers are skipped.
pub(crate) fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name() == name)
        .map(|c| c.value().to_owned())
}
