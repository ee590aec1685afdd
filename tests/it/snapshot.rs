//! A protocol-neutral view of a response, so answers over HTTP/1.1, HTTP/2 and HTTP/3 compare.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// Status, end-to-end headers (sorted, without `date`) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Headers that legitimately differ between protocols or between two requests.
const VOLATILE: &[&str] = &["date", "connection", "keep-alive", "transfer-encoding"];

impl Snapshot {
    pub fn new(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Self {
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| !VOLATILE.contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("<binary>").to_owned()))
            .collect();
        headers.sort();
        Self { status, headers, body }
    }

    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body");
        Self::new(status, &headers, body)
    }

    pub fn of_h3(response: http::Response<Bytes>) -> Self {
        let (parts, body) = response.into_parts();
        Self::new(parts.status, &parts.headers, body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The same snapshot without one header.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }
}
