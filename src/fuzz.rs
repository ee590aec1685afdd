//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): each feeds arbitrary bytes
//! to one parser of client or file input and panics only when an invariant breaks.
//!
//! The same functions are the bodies of the proptest twins below, so CI runs every target's
//! checks on random input without a nightly toolchain.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::ingest::multipart::{MultipartReader, boundary};
use crate::range::parse::{MAX_RANGES, RangeDecision, decide};

/// Runs `future` to completion when it never waits (the parsers below read from in-memory
/// streams), without a runtime.
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => unreachable!("an in-memory parse never waits"),
    }
}

/// `Range` parsing: the first 8 bytes are the file length (big-endian), the rest the header.
/// Honoured ranges lie within the file, are sorted, disjoint and not adjacent, at most 16, and
/// several add up to no more than the file.
pub fn range(data: &[u8]) {
    let (len, header) = match data.split_first_chunk::<8>() {
        Some((len, header)) => (u64::from_be_bytes(*len), header),
        None => (1000, data),
    };
    let header = String::from_utf8_lossy(header);
    let RangeDecision::Partial(ranges) = decide(Some(&header), len) else { return };
    assert!(!ranges.is_empty() && ranges.len() <= MAX_RANGES, "{} ranges for {header:?}", ranges.len());
    let mut next_free = 0;
    let mut total = 0u64;
    for range in &ranges {
        let end = range.start() + (range.len() - 1);
        assert!(end < len, "{range} outside a {len}-byte file for {header:?}");
        assert!(range.start() >= next_free, "{ranges:?} unsorted, overlapping or adjacent for {header:?}");
        next_free = end + 2;
        total += range.len();
    }
    assert!(ranges.len() == 1 || total <= len, "{total} bytes of a {len}-byte file for {header:?}");
}

/// Container parsing (MP4 and WebM, sniffed as at ingest) of `data` as a whole file: a parsed
/// time index points inside the file and is sorted.
pub fn container(data: &[u8]) {
    use std::io::Write;
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(data).expect("written");
    let len = data.len() as u64;
    let Ok(info) = crate::media::container::probe(&file, len) else { return };
    let points = info.time_index.points();
    assert!(points.iter().all(|p| p.byte < len), "an index point past the end of {len} bytes: {points:?}");
    assert!(points.windows(2).all(|w| w[0].byte <= w[1].byte), "an unsorted index: {points:?}");
}

/// The form reader: byte 0 chooses the chunk size, the rest is a body with boundary `XyZ`,
/// read part by part as uploads read it. Parts never hold more data than the body, and the
/// reader never asks for more than it was given.
pub fn multipart(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else { return };
    let chunks: Vec<_> =
        body.chunks(usize::from(size.max(1))).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let mut reader = MultipartReader::new("XyZ", futures_util::stream::iter(chunks), 1 << 20);
    let read = ready(async {
        let mut total = 0;
        while let Some(part) = reader.next_part().await? {
            let _ = part.name();
            total += reader.bytes(1 << 20).await?.len();
        }
        Ok::<_, crate::ingest::multipart::MultipartError>(total)
    });
    if let Ok(total) = read {
        assert!(total <= body.len(), "{total} bytes of data from a {}-byte body", body.len());
    }
    // The same bytes as a Content-Type, whose boundary parameter they may name.
    let _ = boundary(&String::from_utf8_lossy(data));
}

/// tus request headers: `Upload-Checksum` and `Upload-Metadata`. Metadata keys are non-empty,
/// printable and free of commas.
pub fn tus_headers(data: &[u8]) {
    let header = String::from_utf8_lossy(data);
    let _ = crate::ingest::tus::Checksum::parse(&header);
    if let Ok(pairs) = crate::ingest::tus::parse_metadata(&header) {
        for (key, _) in pairs {
            assert!(!key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic() && b != b','), "key {key:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))).expect("a bundled sample")
    }

    /// Range headers close to real ones: lists of `a-b`, `a-`, `-n`, junk around them. Small
    /// numbers against a small file make overlaps, adjacency and the end of the file common.
    fn range_header() -> impl Strategy<Value = String> {
        let spec = prop_oneof![
            (0u64..80, 0u64..80).prop_map(|(a, b)| format!("{a}-{b}")),
            (0u64..80).prop_map(|a| format!("{a}-")),
            (0u64..80).prop_map(|n| format!("-{n}")),
            "[ ,0-9=-]{0,6}",
        ];
        (prop::collection::vec(spec, 0..24), "(bytes|BYTES| bytes |items|)")
            .prop_map(|(specs, unit)| format!("{unit}={}", specs.join(",")))
    }

    /// A sample with up to eight bytes overwritten in its first 64 KiB, where the index lives.
    fn mutated(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
        let head = bytes.len().min(64 * 1024);
        prop::collection::vec((0..head, any::<u8>()), 1..8).prop_map(move |edits| {
            let mut bytes = bytes.clone();
            for (at, value) in edits {
                bytes[at] = value;
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn range_invariants_hold_for_any_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            range(&data);
        }

        #[test]
        fn range_invariants_hold_for_plausible_headers(len in 0u64..100, header in range_header()) {
            let mut data = len.to_be_bytes().to_vec();
            data.extend_from_slice(header.as_bytes());
            range(&data);
        }

        #[test]
        fn multipart_never_panics_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
            multipart(&data);
        }

        #[test]
        fn multipart_never_panics_on_mangled_forms(
            size in 1u8..=255,
            cut in 0usize..200,
            junk in "[-\r\nXyZ:;=\" a-z]{0,40}",
        ) {
            let form = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nA title\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nbytes\r\n--XyZ--\r\n";
            let cut = cut.min(form.len());
            let mut data = vec![size];
            data.extend_from_slice(&form[..cut]);
            data.extend_from_slice(junk.as_bytes());
            data.extend_from_slice(&form[cut..]);
            multipart(&data);
        }

        #[test]
        fn tus_headers_never_panic(header in "(sha1 |sha256 |md5 |)[ -~]{0,80}") {
            tus_headers(header.as_bytes());
        }
    }

    proptest! {
        // Each case writes a whole sample to a temporary file.
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn container_invariants_hold_for_any_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
            container(&data);
        }

        #[test]
        fn container_invariants_hold_for_a_mutated_mp4(data in mutated(sample("sample-h264.mp4"))) {
            container(&data);
        }

        #[test]
        fn container_invariants_hold_for_a_mutated_webm(data in mutated(sample("sample-vp9.webm"))) {
            container(&data);
        }
    }

    #[test]
    fn the_bundled_samples_pass_the_container_checks() {
        for name in ["sample-h264.mp4", "sample-moov-at-end.mp4", "sample-vp9.webm"] {
            container(&sample(name));
        }
    }
}
