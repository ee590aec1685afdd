//! The leading control fields of a form post (`_csrf`, `_method`), read without taking the body
//! from the handler: the bytes read are put back in front of the rest.
//!
//! URL-encoded bodies are small: read whole, up to [`LIMIT`]. Multipart bodies may be gigabytes
//! of video: only their first [`LIMIT`] bytes are looked at, and only the parts before the first
//! other field count, which is where forms put hidden inputs (browsers send fields in document
//! order, RFC 7578 §5.2).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;

use crate::error::AppError;

/// How many body bytes are read to find the control fields: 64 KiB holds any login or settings
/// form, and is all a request can make the server buffer here.
pub(crate) const LIMIT: usize = 64 * 1024;

/// The control fields a form post carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    /// `_csrf`: the session's CSRF token.
    pub(crate) csrf: Option<String>,
    /// `_method`: the method the form means (`PUT`, `PATCH`, `DELETE`).
    pub(crate) method: Option<String>,
}

/// The kinds of body that HTML forms send.
enum Kind {
    UrlEncoded,
    Multipart(String),
}

fn kind(headers: &HeaderMap) -> Option<Kind> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    match essence.trim().to_ascii_lowercase().as_str() {
        "application/x-www-form-urlencoded" => Some(Kind::UrlEncoded),
        "multipart/form-data" => params.split(';').find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| Kind::Multipart(value.trim().trim_matches('"').to_owned()))
        }),
        _ => None,
    }
}

/// Whether `request` is a form post: `POST` with a URL-encoded or multipart body.
pub(crate) fn is_form_post(request: &Request) -> bool {
    request.method() == Method::POST && kind(request.headers()).is_some()
}

/// The control fields of a form post, and the request with its body whole again. The fields are
/// kept in the request's extensions, so a second caller (CSRF, then method override) reads no
/// body. A request that is not a form post has none.
pub(crate) async fn peek(request: Request) -> Result<(Request, Arc<Fields>), AppError> {
    if let Some(fields) = request.extensions().get::<Arc<Fields>>() {
        let fields = fields.clone();
        return Ok((request, fields));
    }
    // A client that sends `Expect: 100-continue` waits for the go-ahead before its body, so the
    // handler can refuse it first (413 on an oversized upload); reading here would give the
    // go-ahead. Browsers never send it, so no HTML form is among these.
    let expects = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let kind = match kind(request.headers()) {
        Some(kind) if request.method() == Method::POST && !expects => kind,
        _ => return Ok((request, Arc::default())),
    };
    let (mut parts, body) = request.into_parts();
    let (fields, body) = match kind {
        Kind::UrlEncoded => {
            let bytes = read_all(body).await?;
            (url_encoded(&bytes), Body::from(bytes))
        }
        Kind::Multipart(boundary) => {
            let mut stream = body.into_data_stream();
            let mut head = BytesMut::new();
            let mut ended = false;
            let fields = loop {
                match leading_parts(&head, &boundary) {
                    Scan::Done(fields) => break fields,
                    Scan::More(fields) if ended || head.len() >= LIMIT => break fields,
                    Scan::More(_) => match stream.next().await {
                        Some(chunk) => head.extend_from_slice(&chunk.map_err(body_error)?),
                        None => ended = true,
                    },
                }
            };
            let head = head.freeze();
            let rest =
                futures_util::stream::once(async move { Ok::<Bytes, axum::Error>(head) }).chain(stream);
            (fields, Body::from_stream(rest))
        }
    };
    let fields = Arc::new(fields);
    parts.extensions.insert(fields.clone());
    Ok((Request::from_parts(parts, body), fields))
}

fn body_error(error: axum::Error) -> AppError {
    AppError::BadRequest(format!("the form body could not be read: {error}"))
}

async fn read_all(body: Body) -> Result<Bytes, AppError> {
    let limited = http_body_util::Limited::new(body, LIMIT);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(AppError::PayloadTooLarge(format!(
                "a URL-encoded form body is limited to {} KiB; send files as multipart/form-data",
                LIMIT / 1024
            )))
        }
        Err(error) => Err(AppError::BadRequest(format!("the form body could not be read: {error}"))),
    }
}

fn url_encoded(body: &[u8]) -> Fields {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let first = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    Fields { csrf: first("_csrf"), method: first("_method") }
}

/// How far the scan of a multipart head got.
enum Scan {
    /// The control parts are all read (another field, or the end, follows them).
    Done(Fields),
    /// The bytes so far end inside a control part; what was found before it.
    More(Fields),
}

/// The `_csrf` and `_method` parts at the start of a multipart body.
fn leading_parts(head: &[u8], boundary: &str) -> Scan {
    let delimiter = format!("--{boundary}");
    let mut fields = Fields::default();
    // The first delimiter may follow a preamble (RFC 2046 §5.1.1); later ones follow CRLF.
    let Some(mut at) = find(head, delimiter.as_bytes()) else { return Scan::More(fields) };
    loop {
        let after = &head[at + delimiter.len()..];
        if after.len() < 2 {
            return Scan::More(fields);
        }
        if after.starts_with(b"--") {
            return Scan::Done(fields);
        }
        let Some(headers_end) = find(after, b"\r\n\r\n") else { return Scan::More(fields) };
        let name = part_name(&after[..headers_end]);
        let value_start = at + delimiter.len() + headers_end + 4;
        let slot = match name.as_deref() {
            Some("_csrf") => &mut fields.csrf,
            Some("_method") => &mut fields.method,
            _ => return Scan::Done(fields),
        };
        let closing = format!("\r\n{delimiter}");
        let Some(len) = find(&head[value_start..], closing.as_bytes()) else { return Scan::More(fields) };
        if slot.is_none() {
            *slot = Some(String::from_utf8_lossy(&head[value_start..value_start + len]).into_owned());
        }
        at = value_start + len + 2;
    }
}

/// The field name of a part without a file name, from its `Content-Disposition`.
fn part_name(headers: &[u8]) -> Option<String> {
    let headers = std::str::from_utf8(headers).ok()?;
    let disposition = headers.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-disposition").then_some(value)
    })?;
    let mut name = None;
    for param in disposition.split(';').skip(1) {
        let (key, value) = param.split_once('=')?;
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value.trim().trim_matches('"').to_owned()),
            "filename" | "filename*" => return None,
            _ => {}
        }
    }
    name
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(body: &[u8]) -> (bool, Fields) {
        match leading_parts(body, "XyZ") {
            Scan::Done(fields) => (true, fields),
            Scan::More(fields) => (false, fields),
        }
    }

    #[test]
    fn leading_control_parts_are_found_and_later_ones_ignored() {
        let form = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\n...";
        let (done, fields) = scan(form);
        assert!(done);
        assert_eq!(fields, Fields { csrf: Some("tok".into()), method: Some("DELETE".into()) });
        let late = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--XyZ\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XyZ--";
        assert_eq!(scan(late), (true, Fields::default()));
        // A file part named _csrf is a file, not a token.
        let file =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"; filename=\"t\"\r\n\r\ntok\r\n--XyZ--";
        assert_eq!(scan(file), (true, Fields::default()));
    }

    #[test]
    fn a_head_cut_inside_a_control_part_asks_for_more() {
        let (done, fields) = scan(b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\nto");
        assert!(!done && fields.csrf.is_none());
        assert!(!scan(b"--Xy").0);
        assert_eq!(url_encoded(b"email=a%40b&_csrf=t+1&_csrf=second").csrf.as_deref(), Some("t 1"));
    }
}
