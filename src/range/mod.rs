//! The range engine: answers GET and HEAD for a file with ranges, validators and preconditions.
//!
//! Ours rather than tower-http's `ServeFile`, which lacks multipart ranges, `If-Range` and strong
//! validators, and cannot report delivered bytes for view counting. Behaviour follows RFC 9110
//! and nginx: see `parse` for ranges, `precondition` for conditional requests.

pub(crate) mod body;
mod multipart;
pub(crate) mod parse;
pub(crate) mod precondition;

use std::fs::File;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) use self::body::Delivery;
use self::body::{FileBody, Segment};
use self::parse::RangeDecision;
use self::precondition::{Outcome, Validators};
use crate::error::AppError;

/// One file as the engine serves it.
pub(crate) struct Representation {
    /// The open file; reads are positioned, so one handle serves concurrent ranges.
    pub(crate) file: Arc<File>,
    /// Its length in bytes.
    pub(crate) len: u64,
    /// Its exact media type.
    pub(crate) mime: HeaderValue,
    /// Its ETag and Last-Modified.
    pub(crate) validators: Validators,
    /// The `Cache-Control` value.
    pub(crate) cache_control: HeaderValue,
    /// Who to tell which bytes went out, if anyone (view counting).
    pub(crate) delivery: Option<Arc<dyn Delivery>>,
}

/// Answers a GET or HEAD for `representation`: 200, 206 (single or multipart), 304, 412 or 416.
///
/// HEAD takes exactly the path of GET, so its headers are GET's to the byte; only the body is
/// left out.
pub(crate) fn respond(method: &Method, headers: &HeaderMap, representation: Representation) -> Response {
    let Representation { file, len, mime, validators, cache_control, delivery } = representation;
    let honour_range = match validators.evaluate(method, headers) {
        Outcome::Failed => return AppError::PreconditionFailed.into_response(),
        Outcome::NotModified => {
            // RFC 9110 §15.4.5: a 304 carries the validators and caching headers a 200 would.
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            let out = response.headers_mut();
            out.extend(validators.headers());
            out.insert(header::CACHE_CONTROL, cache_control);
            return response;
        }
        Outcome::Proceed { honour_range } => honour_range,
    };
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).filter(|_| honour_range);
    let (status, content_type, segments, body_len, content_range) = match parse::decide(range_header, len) {
        RangeDecision::Unsatisfiable => return AppError::RangeNotSatisfiable(len).into_response(),
        RangeDecision::Full => (StatusCode::OK, mime, vec![Segment::File { offset: 0, len }], len, None),
        RangeDecision::Partial(ranges) if ranges.len() == 1 => {
            let range = ranges[0];
            let segment = Segment::File { offset: range.start(), len: range.len() };
            (StatusCode::PARTIAL_CONTENT, mime, vec![segment], range.len(), Some(range.content_range(len)))
        }
        RangeDecision::Partial(ranges) => {
            let mime = mime.to_str().unwrap_or("application/octet-stream");
            let framed = multipart::frame(&ranges, len, mime);
            let content_type = HeaderValue::try_from(framed.content_type).expect("boundary is hex");
            (StatusCode::PARTIAL_CONTENT, content_type, framed.segments, framed.len, None)
        }
    };

    let head = method == Method::HEAD;
    let file_bytes: u64 = segments
        .iter()
        .map(|s| match s {
            Segment::File { len, .. } => *len,
            Segment::Bytes(_) => 0,
        })
        .sum();
    let delivery = delivery.filter(|d| d.begin(head, file_bytes));
    let body = if head || body_len == 0 {
        Body::empty()
    } else {
        let body = FileBody::new(file, segments);
        Body::new(match delivery {
            Some(delivery) => body.reporting_to(delivery),
            None => body,
        })
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, content_type);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(content_range) = content_range {
        out.insert(header::CONTENT_RANGE, HeaderValue::try_from(content_range).expect("digits"));
    }
    out.extend(validators.headers());
    out.insert(header::CACHE_CONTROL, cache_control);
    out.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests {
    use std::ops::RangeInclusive;

    use http_body_util::BodyExt;
    use proptest::prelude::*;

    use super::*;

    /// A real file of the library, small enough that 10,000 cases stay quick in a debug build.
    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-photo.jpg");

    fn representation() -> (Representation, Vec<u8>) {
        let bytes = std::fs::read(SAMPLE).unwrap();
        let file = Arc::new(File::open(SAMPLE).unwrap());
        let validators = Validators::new(&blake3::hash(&bytes).to_hex(), std::time::SystemTime::UNIX_EPOCH);
        let representation = Representation {
            file,
            len: bytes.len() as u64,
            mime: HeaderValue::from_static("image/jpeg"),
            validators,
            cache_control: HeaderValue::from_static("public, max-age=60"),
            delivery: None,
        };
        (representation, bytes)
    }

    /// One range spec as a client might write it, possibly outside the file.
    #[derive(Debug, Clone)]
    enum SpecCase {
        Closed(u64, u64),
        Open(u64),
        Suffix(u64),
    }

    fn spec(len: u64) -> impl Strategy<Value = SpecCase> {
        let beyond = len + len / 4;
        prop_oneof![
            (0..beyond, 0..beyond).prop_map(|(a, b)| SpecCase::Closed(a.min(b), a.max(b))),
            (0..beyond).prop_map(SpecCase::Open),
            (0..beyond).prop_map(SpecCase::Suffix),
        ]
    }

    /// The bytes a spec covers, computed independently of the engine.
    fn covered(spec: &SpecCase, len: u64) -> Option<RangeInclusive<u64>> {
        match *spec {
            SpecCase::Closed(a, _) | SpecCase::Open(a) if a >= len => None,
            SpecCase::Closed(a, b) => Some(a..=b.min(len - 1)),
            SpecCase::Open(a) => Some(a..=len - 1),
            SpecCase::Suffix(0) => None,
            SpecCase::Suffix(n) => Some(len.saturating_sub(n)..=len - 1),
        }
    }

    fn header(specs: &[SpecCase]) -> String {
        let parts: Vec<String> = specs
            .iter()
            .map(|s| match s {
                SpecCase::Closed(a, b) => format!("{a}-{b}"),
                SpecCase::Open(a) => format!("{a}-"),
                SpecCase::Suffix(n) => format!("-{n}"),
            })
            .collect();
        format!("bytes={}", parts.join(","))
    }

    fn sample_len() -> u64 {
        std::fs::metadata(SAMPLE).unwrap().len()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        #[test]
        fn every_answer_matches_the_file_bytes(specs in prop::collection::vec(spec(sample_len()), 1..=16)) {
            let runtime = runtime();
            let _inside = runtime.enter();
            let (representation, file) = representation();
            let len = file.len() as u64;
            let mut headers = HeaderMap::new();
            let range_header = header(&specs);
            headers.insert(header::RANGE, HeaderValue::from_str(&range_header).unwrap());
            let response = respond(&Method::GET, &headers, representation);
            let status = response.status();
            let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let declared: Option<u64> = response.headers().get(header::CONTENT_LENGTH).map(|v| v.to_str().unwrap().parse().unwrap());
            let content_range = response.headers().get(header::CONTENT_RANGE).map(|v| v.to_str().unwrap().to_owned());
            let body = runtime.block_on(response.into_body().collect()).unwrap().to_bytes();

            let wanted: Vec<RangeInclusive<u64>> = specs.iter().filter_map(|s| covered(s, len)).collect();
            let requested: u64 = wanted.iter().map(|r| r.end() - r.start() + 1).sum();
            if wanted.is_empty() {
                prop_assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
                prop_assert_eq!(content_range, Some(format!("bytes */{len}")));
                return Ok(());
            }
            if wanted.len() > 1 && requested > len {
                prop_assert_eq!(status, StatusCode::OK, "nginx rule: {}", range_header);
            }
            if status == StatusCode::OK {
                prop_assert_eq!(&body[..], &file[..]);
                prop_assert_eq!(declared, Some(len));
                return Ok(());
            }
            prop_assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            prop_assert_eq!(declared, Some(body.len() as u64));
            // The parts the engine sent, as (start, end, bytes).
            let parts: Vec<(u64, u64, Vec<u8>)> = match content_type.strip_prefix("multipart/byteranges; boundary=") {
                None => {
                    let (start, end) = parse_content_range(content_range.as_deref().unwrap(), len);
                    vec![(start, end, body.to_vec())]
                }
                Some(boundary) => split_parts(&body, boundary, len),
            };
            // Every part is the file's slice, parts are sorted and disjoint, and together they
            // cover exactly the bytes the client asked for.
            let mut sent = std::collections::BTreeSet::new();
            let mut previous_end: Option<u64> = None;
            for (start, end, bytes) in &parts {
                prop_assert_eq!(&bytes[..], &file[*start as usize..=*end as usize]);
                if let Some(previous) = previous_end {
                    prop_assert!(*start > previous + 1, "parts are coalesced: {}", range_header);
                }
                previous_end = Some(*end);
                sent.extend(*start..=*end);
            }
            let asked: std::collections::BTreeSet<u64> = wanted.iter().flat_map(|r| r.clone()).collect();
            prop_assert_eq!(sent, asked);
        }
    }

    fn parse_content_range(value: &str, len: u64) -> (u64, u64) {
        let rest = value.strip_prefix("bytes ").unwrap();
        let (range, total) = rest.split_once('/').unwrap();
        assert_eq!(total.parse::<u64>().unwrap(), len);
        let (start, end) = range.split_once('-').unwrap();
        (start.parse().unwrap(), end.parse().unwrap())
    }

    fn split_parts(body: &[u8], boundary: &str, len: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let delimiter = format!("\r\n--{boundary}");
        let mut parts = Vec::new();
        let mut rest = body;
        assert!(rest.starts_with(delimiter.as_bytes()));
        loop {
            rest = &rest[delimiter.len()..];
            if rest == b"--\r\n" {
                return parts;
            }
            let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let head = std::str::from_utf8(&rest[..head_end]).unwrap();
            let content_range = head.lines().find_map(|l| l.strip_prefix("Content-Range: ")).unwrap();
            let (start, end) = parse_content_range(content_range, len);
            let data_start = head_end + 4;
            let data_end = data_start + (end - start + 1) as usize;
            parts.push((start, end, rest[data_start..data_end].to_vec()));
            rest = &rest[data_end..];
        }
    }

    #[tokio::test]
    async fn head_sends_the_headers_of_get_without_a_body() {
        let (rep, file) = representation();
        let response = respond(&Method::HEAD, &HeaderMap::new(), rep);
        assert_eq!(response.headers()[header::CONTENT_LENGTH], file.len().to_string());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
}
