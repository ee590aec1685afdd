//! The range engine seen by real players, over HTTP/1.1, HTTP/2 and HTTP/3 alike.

use http::Method;

use crate::common::{ALL_PROTOCOLS, Protocol, TestApp, spawn_app};
use crate::snapshot::Snapshot;

const MP4: &str = "/media/sample-h264.mp4";
const MOOV_AT_END: &str = "/media/sample-moov-at-end.mp4";

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn get(app: &TestApp, protocol: Protocol, path: &str, headers: &[(&str, &str)]) -> Snapshot {
    app.fetch(protocol, Method::GET, path, headers).await
}

#[tokio::test]
async fn safari_probe_gets_exactly_two_bytes_with_206() {
    let app = spawn_app().await;
    let file = sample("sample-h264.mp4");
    for protocol in ALL_PROTOCOLS {
        let answer = get(&app, protocol, MP4, &[("range", "bytes=0-1")]).await;
        assert_eq!(answer.status, 206, "{protocol:?}");
        assert_eq!(answer.body, file[..2], "{protocol:?}");
        assert_eq!(answer.header("content-length"), Some("2"));
        assert_eq!(answer.header("content-range"), Some(format!("bytes 0-1/{}", file.len()).as_str()));
        assert_eq!(answer.header("content-type"), Some("video/mp4"));
        assert_eq!(answer.header("accept-ranges"), Some("bytes"));
    }
}

#[tokio::test]
async fn chrome_open_range_then_resume_with_if_range() {
    let app = spawn_app().await;
    let file = sample("sample-h264.mp4");
    for protocol in ALL_PROTOCOLS {
        let first = get(&app, protocol, MP4, &[("range", "bytes=0-")]).await;
        assert_eq!(first.status, 206, "bytes=0- is partial content, as Safari needs");
        assert_eq!(first.body, file);
        let etag = first.header("etag").unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "strong ETag: {etag}");

        let resume = get(&app, protocol, MP4, &[("range", "bytes=500000-"), ("if-range", &etag)]).await;
        assert_eq!(resume.status, 206);
        assert_eq!(resume.body, file[500_000..]);
        assert_eq!(
            resume.header("content-range"),
            Some(format!("bytes 500000-{}/{}", file.len() - 1, file.len()).as_str())
        );

        let stale = get(&app, protocol, MP4, &[("range", "bytes=500000-"), ("if-range", "\"stale\"")]).await;
        assert_eq!(stale.status, 200, "a stale If-Range gets the whole current file");
        assert_eq!(stale.body, file);
        assert_eq!(stale.header("content-range"), None);
    }
}

#[tokio::test]
async fn no_range_gets_the_whole_file_and_advertises_ranges() {
    let app = spawn_app().await;
    let file = sample("sample-vp9.webm");
    for protocol in ALL_PROTOCOLS {
        let answer = get(&app, protocol, "/media/sample-vp9.webm", &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, file);
        assert_eq!(answer.header("content-type"), Some("video/webm"));
        assert_eq!(answer.header("content-length"), Some(file.len().to_string().as_str()));
        assert_eq!(answer.header("accept-ranges"), Some("bytes"));
        assert_eq!(answer.header("content-disposition"), Some("inline"));
        assert!(answer.header("last-modified").is_some());
        assert!(answer.header("cache-control").unwrap().contains("max-age"));
    }
}

#[tokio::test]
async fn suffix_and_open_ranges() {
    let app = spawn_app().await;
    let file = sample("sample-h264.mp4");
    let len = file.len();
    for protocol in ALL_PROTOCOLS {
        let suffix = get(&app, protocol, MP4, &[("range", "bytes=-1000")]).await;
        assert_eq!((suffix.status.as_u16(), &suffix.body[..]), (206, &file[len - 1000..]));
        let open = get(&app, protocol, MP4, &[("range", &format!("bytes={}-", len - 10))]).await;
        assert_eq!((open.status.as_u16(), &open.body[..]), (206, &file[len - 10..]));
        let clamped =
            get(&app, protocol, MP4, &[("range", &format!("bytes={}-{}", len - 5, len + 100))]).await;
        assert_eq!(clamped.body, file[len - 5..]);
    }
}

#[tokio::test]
async fn several_ranges_come_back_as_multipart_byteranges() {
    let app = spawn_app().await;
    let file = sample("sample-h264.mp4");
    for protocol in ALL_PROTOCOLS {
        let answer = get(&app, protocol, MP4, &[("range", "bytes=100-199, 0-9, 5000-5099")]).await;
        assert_eq!(answer.status, 206);
        let content_type = answer.header("content-type").unwrap();
        let boundary = content_type.strip_prefix("multipart/byteranges; boundary=").expect(content_type);
        assert_eq!(answer.header("content-length").unwrap(), answer.body.len().to_string());
        let parts = parse_multipart(&answer.body, boundary);
        let expected = [(0, 9), (100, 199), (5000, 5099)];
        assert_eq!(parts.len(), 3, "{protocol:?}");
        for ((range, content_type, data), (start, end)) in parts.iter().zip(expected) {
            assert_eq!(range, &format!("bytes {start}-{end}/{}", file.len()));
            assert_eq!(content_type, "video/mp4");
            assert_eq!(data, &file[start..=end]);
        }
    }
}

/// Splits a multipart/byteranges body into (Content-Range, Content-Type, data) parts.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, String, Vec<u8>)> {
    let delimiter = format!("\r\n--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    let mut at = 0;
    while let Some(found) = find(&text[at..], delimiter.as_bytes()) {
        positions.push(at + found);
        at += found + delimiter.len();
    }
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delimiter.len()..pair[1]];
        let header_end = find(part, b"\r\n\r\n").expect("part headers end");
        let headers = String::from_utf8_lossy(&part[..header_end]).to_string();
        let header = |name: &str| {
            headers
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                .unwrap_or_default()
        };
        parts.push((header("Content-Range"), header("Content-Type"), part[header_end + 4..].to_vec()));
    }
    let last = *positions.last().expect("closing delimiter");
    assert_eq!(&text[last + delimiter.len()..], b"--\r\n", "closing delimiter ends the body");
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn unsatisfiable_range_is_416_with_the_length() {
    let app = spawn_app().await;
    let len = sample("sample-h264.mp4").len();
    for protocol in ALL_PROTOCOLS {
        let answer = get(&app, protocol, MP4, &[("range", &format!("bytes={len}-"))]).await;
        assert_eq!(answer.status, 416);
        assert_eq!(answer.header("content-range"), Some(format!("bytes */{len}").as_str()));
    }
}

#[tokio::test]
async fn if_none_match_gets_304_with_the_validators_and_no_body() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        let first = get(&app, protocol, MP4, &[]).await;
        let etag = first.header("etag").unwrap();
        let again = get(&app, protocol, MP4, &[("if-none-match", etag)]).await;
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), Some(etag));
        assert_eq!(again.header("last-modified"), first.header("last-modified"));
        assert_eq!(again.header("cache-control"), first.header("cache-control"));
        let modified =
            get(&app, protocol, MP4, &[("if-modified-since", first.header("last-modified").unwrap())]).await;
        assert_eq!(modified.status, 304);
        let failed = get(&app, protocol, MP4, &[("if-match", "\"something-else\"")]).await;
        assert_eq!(failed.status, 412);
    }
}

#[tokio::test]
async fn head_has_exactly_the_headers_of_get_and_no_body() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        for range in [None, Some("bytes=0-1"), Some("bytes=0-9,20-29")] {
            let headers: Vec<(&str, &str)> =
                range.map(|r| ("range", r)).into_iter().chain([("x-request-id", "same")]).collect();
            let get = app.fetch(protocol, Method::GET, MP4, &headers).await;
            let head = app.fetch(protocol, Method::HEAD, MP4, &headers).await;
            assert!(head.body.is_empty(), "{protocol:?} {range:?}");
            let strip = |s: &Snapshot| {
                // Multipart boundaries are random per response; everything else must match.
                let mut s = s.clone();
                for (name, value) in &mut s.headers {
                    if name == "content-type" && value.starts_with("multipart/") {
                        *value = "multipart/byteranges".into();
                    }
                }
                s.headers
            };
            assert_eq!(strip(&head), strip(&get), "{protocol:?} {range:?}");
        }
    }
}

#[tokio::test]
async fn media_is_never_content_encoded() {
    let app = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        let answer = get(&app, protocol, MP4, &[("accept-encoding", "br, gzip, zstd")]).await;
        assert_eq!(answer.header("content-encoding"), None);
        assert_eq!(answer.body.len(), sample("sample-h264.mp4").len());
    }
}

#[tokio::test]
async fn an_mp4_with_its_index_at_the_end_still_seeks() {
    let app = spawn_app().await;
    let file = sample("sample-moov-at-end.mp4");
    let len = file.len();
    for protocol in ALL_PROTOCOLS {
        // A player first reads the head, finds mdat, jumps to the end for moov, then seeks.
        let head = get(&app, protocol, MOOV_AT_END, &[("range", "bytes=0-")]).await;
        assert_eq!(head.status, 206);
        let tail = get(&app, protocol, MOOV_AT_END, &[("range", &format!("bytes={}-", len - 16679))]).await;
        assert_eq!(&tail.body[4..8], b"moov");
        let middle = get(&app, protocol, MOOV_AT_END, &[("range", "bytes=100000-")]).await;
        assert_eq!(middle.body, file[100_000..]);
    }
}

#[tokio::test]
async fn cross_origin_players_can_read_the_range_headers() {
    let app = spawn_app().await;
    let answer =
        get(&app, Protocol::Http2, MP4, &[("origin", "https://blog.example"), ("range", "bytes=0-1")]).await;
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    let exposed = answer.header("access-control-expose-headers").unwrap().to_ascii_lowercase();
    for name in ["content-range", "content-length", "accept-ranges", "etag"] {
        assert!(exposed.contains(name), "{exposed}");
    }
}
