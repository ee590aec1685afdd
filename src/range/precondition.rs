//! Conditional requests: validators and their evaluation in RFC 9110 §13.2.2 order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};

/// The validators of one representation: a strong ETag and a Last-Modified date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Validators {
    etag: String,
    last_modified: SystemTime,
}

/// What the preconditions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answer normally; `honour_range` is false when `If-Range` did not match.
    Proceed { honour_range: bool },
    /// 304 Not Modified (GET or HEAD whose cached copy is current).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

impl Validators {
    /// Validators from a content hash (hex) and a modification time, truncated to whole seconds
    /// because that is all HTTP dates carry.
    pub(crate) fn new(content_hash: &str, modified: SystemTime) -> Self {
        // 128 bits of the hash identify the content; the full 256 would only lengthen headers.
        let tag = &content_hash[..content_hash.len().min(32)];
        let seconds = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self { etag: format!("\"{tag}\""), last_modified: UNIX_EPOCH + Duration::from_secs(seconds) }
    }

    /// The `ETag` and `Last-Modified` headers.
    pub(crate) fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        [
            (header::ETAG, HeaderValue::from_str(&self.etag).expect("hex in quotes is a valid header")),
            (
                header::LAST_MODIFIED,
                HeaderValue::from_str(&httpdate::fmt_http_date(self.last_modified))
                    .expect("an HTTP date is a valid header"),
            ),
        ]
    }

    /// Evaluates the request's preconditions against these validators.
    pub(crate) fn evaluate(&self, method: &Method, headers: &HeaderMap) -> Outcome {
        let safe = method == Method::GET || method == Method::HEAD;
        // Step 1 and 2: If-Match, else If-Unmodified-Since.
        if let Some(tags) = joined(headers, &header::IF_MATCH) {
            if !self.strongly_matches(&tags) {
                return Outcome::Failed;
            }
        } else if let Some(date) = date(headers, &header::IF_UNMODIFIED_SINCE)
            && self.last_modified > date
        {
            return Outcome::Failed;
        }
        // Step 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only).
        if headers.contains_key(header::IF_NONE_MATCH) {
            if none_match(headers, &self.etag) {
                return if safe { Outcome::NotModified } else { Outcome::Failed };
            }
        } else if safe
            && let Some(date) = date(headers, &header::IF_MODIFIED_SINCE)
            && self.last_modified <= date
        {
            return Outcome::NotModified;
        }
        // Step 5: If-Range decides whether a Range on a GET is honoured.
        let honour_range = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
            Some(_) if method != Method::GET => true,
            Some(value) => self.if_range_matches(value.trim()),
            None => true,
        };
        Outcome::Proceed { honour_range }
    }

    fn if_range_matches(&self, value: &str) -> bool {
        if value.starts_with('"') || value.starts_with("W/") {
            // Strong comparison: a weak tag never matches (RFC 9110 §13.1.5).
            return !value.starts_with("W/") && value == self.etag;
        }
        httpdate::parse_http_date(value).is_ok_and(|date| date == self.last_modified)
    }

    /// `If-Match` semantics: `*`, or the list holds our tag and it is not weak.
    fn strongly_matches(&self, list: &str) -> bool {
        list.trim() == "*" || entity_tags(list).any(|tag| !tag.starts_with("W/") && tag == self.etag)
    }
}

/// Whether `If-None-Match` lists `etag` (weak comparison) or is `*`: the answer is then 304.
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    joined(headers, &header::IF_NONE_MATCH).is_some_and(|list| {
        list.trim() == "*" || entity_tags(&list).any(|tag| tag.trim_start_matches("W/") == etag)
    })
}

/// Every value of a list header, joined with commas (the header may be repeated).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A date header; an invalid date is ignored, as RFC 9110 §13.1.3–4 require.
fn date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    headers.get(name)?.to_str().ok().and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// The entity tags of a list: quoted strings may contain commas, so split on quotes, not commas.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let weak = rest.starts_with("W/");
        let body_start = if weak { 2 } else { 0 };
        if !rest[body_start..].starts_with('"') {
            return None;
        }
        let close = rest[body_start + 1..].find('"')? + body_start + 1;
        let (tag, after) = rest.split_at(close + 1);
        rest = after;
        Some(tag)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn validators() -> Validators {
        Validators::new(HASH, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    fn eval(method: Method, pairs: &[(HeaderName, &str)]) -> Outcome {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        validators().evaluate(&method, &headers)
    }

    const ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";
    const MODIFIED: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const EARLIER: &str = "Mon, 13 Nov 2023 22:13:20 GMT";
    const PROCEED: Outcome = Outcome::Proceed { honour_range: true };

    #[test]
    fn etag_is_strong_and_last_modified_is_an_http_date() {
        let [(_, etag), (_, modified)] = validators().headers();
        assert_eq!(etag, ETAG);
        assert_eq!(modified, MODIFIED);
    }

    #[test]
    fn if_none_match_gives_304_for_get_and_412_otherwise() {
        assert_eq!(eval(Method::GET, &[(header::IF_NONE_MATCH, ETAG)]), Outcome::NotModified);
        assert_eq!(
            eval(Method::HEAD, &[(header::IF_NONE_MATCH, &format!("W/{ETAG}"))]),
            Outcome::NotModified
        );
        assert_eq!(eval(Method::GET, &[(header::IF_NONE_MATCH, "\"other\", *")]), PROCEED);
        assert_eq!(eval(Method::GET, &[(header::IF_NONE_MATCH, "*")]), Outcome::NotModified);
        assert_eq!(eval(Method::DELETE, &[(header::IF_NONE_MATCH, ETAG)]), Outcome::Failed);
        assert_eq!(eval(Method::GET, &[(header::IF_NONE_MATCH, "\"a,b\"")]), PROCEED);
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let pairs = [(header::IF_NONE_MATCH, "\"other\""), (header::IF_MODIFIED_SINCE, MODIFIED)];
        assert_eq!(eval(Method::GET, &pairs), PROCEED);
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(eval(Method::GET, &[(header::IF_MODIFIED_SINCE, MODIFIED)]), Outcome::NotModified);
        assert_eq!(eval(Method::GET, &[(header::IF_MODIFIED_SINCE, EARLIER)]), PROCEED);
        assert_eq!(eval(Method::GET, &[(header::IF_MODIFIED_SINCE, "yesterday")]), PROCEED);
    }

    #[test]
    fn if_match_uses_strong_comparison_and_comes_first() {
        assert_eq!(eval(Method::GET, &[(header::IF_MATCH, ETAG)]), PROCEED);
        assert_eq!(eval(Method::GET, &[(header::IF_MATCH, &format!("W/{ETAG}"))]), Outcome::Failed);
        assert_eq!(eval(Method::GET, &[(header::IF_MATCH, "\"x\"")]), Outcome::Failed);
        let both = [(header::IF_MATCH, "\"x\""), (header::IF_NONE_MATCH, ETAG)];
        assert_eq!(eval(Method::GET, &both), Outcome::Failed);
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(eval(Method::GET, &[(header::IF_UNMODIFIED_SINCE, EARLIER)]), Outcome::Failed);
        assert_eq!(eval(Method::GET, &[(header::IF_UNMODIFIED_SINCE, MODIFIED)]), PROCEED);
        // Ignored when If-Match is present.
        let pairs = [(header::IF_MATCH, ETAG), (header::IF_UNMODIFIED_SINCE, EARLIER)];
        assert_eq!(eval(Method::GET, &pairs), PROCEED);
    }

    #[test]
    fn if_range_needs_a_strong_match() {
        let ignore = Outcome::Proceed { honour_range: false };
        assert_eq!(eval(Method::GET, &[(header::IF_RANGE, ETAG)]), PROCEED);
        assert_eq!(eval(Method::GET, &[(header::IF_RANGE, &format!("W/{ETAG}"))]), ignore);
        assert_eq!(eval(Method::GET, &[(header::IF_RANGE, "\"stale\"")]), ignore);
        assert_eq!(eval(Method::GET, &[(header::IF_RANGE, MODIFIED)]), PROCEED);
        assert_eq!(eval(Method::GET, &[(header::IF_RANGE, EARLIER)]), ignore);
    }
}
