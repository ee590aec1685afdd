//! Container parsing: what a video file holds and where its media time lies, read in bounded pieces.

mod mp4;
pub(crate) mod mp4box;
mod webm;

use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Deserializer, Serialize};

/// A container format kino can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// ISO base media (MP4, QuickTime).
    Mp4,
    /// EBML-based WebM or Matroska.
    WebM,
}

impl Container {
    /// The container's short lowercase name, as stored and shown.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::WebM => "webm",
        }
    }
}

/// What a video file holds, read from its container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaInfo {
    /// The container format.
    pub(crate) container: Container,
    /// The presentation length in milliseconds, when the container states it.
    pub(crate) duration_ms: Option<u64>,
    /// The video frame width in pixels.
    pub(crate) width: Option<u32>,
    /// The video frame height in pixels.
    pub(crate) height: Option<u32>,
    /// The video codec: "h264", "hevc", "vp8", "vp9", "av1", else the raw fourcc or CodecID.
    pub(crate) video_codec: Option<String>,
    /// The audio codec: "aac", "opus", "vorbis", "mp3", "flac", else the raw fourcc or CodecID.
    pub(crate) audio_codec: Option<String>,
    /// Whether playback can start before the end of the file has been fetched.
    pub(crate) faststart: bool,
    /// Byte offsets mapped to media time.
    pub(crate) time_index: TimeIndex,
}

/// Sorted points mapping byte offsets in the file to media time, for seeking and view checkpoints.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub(crate) struct TimeIndex {
    points: Vec<IndexPoint>,
}

/// One place in a file: the byte offset where media time `ms` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u64, u64)", into = "(u64, u64)")]
pub(crate) struct IndexPoint {
    /// The byte offset in the file.
    pub(crate) byte: u64,
    /// The media time in milliseconds.
    pub(crate) ms: u64,
}

impl From<(u64, u64)> for IndexPoint {
    fn from((byte, ms): (u64, u64)) -> Self {
        IndexPoint { byte, ms }
    }
}

impl From<IndexPoint> for (u64, u64) {
    fn from(point: IndexPoint) -> Self {
        (point.byte, point.ms)
    }
}

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "lookups serve view checkpoints, which land with view counting")
)]
impl TimeIndex {
    /// Builds an index from points in any order, sorting by byte and dropping duplicates.
    ///
    /// Points whose time runs backwards from an earlier byte are dropped too, so that both
    /// lookups stay binary searches over one monotonic list.
    pub(crate) fn new(mut points: Vec<IndexPoint>) -> Self {
        points.sort_unstable_by_key(|p| (p.byte, p.ms));
        points.dedup_by_key(|p| p.byte);
        let mut latest = 0;
        points.retain(|p| {
            let keep = p.ms >= latest;
            latest = latest.max(p.ms);
            keep
        });
        TimeIndex { points }
    }

    /// The same index with at most one point per `gap_ms` of media time (the first and last
    /// kept): MP4s index every chunk, 25 a second from ffmpeg, far finer than seeks or view
    /// checkpoints need, and a two-hour film would otherwise store megabytes of points.
    pub(crate) fn thinned(&self, gap_ms: u64) -> Self {
        let mut kept: Vec<IndexPoint> = Vec::new();
        for point in &self.points {
            if kept.last().is_none_or(|last| point.ms >= last.ms + gap_ms) {
                kept.push(*point);
            }
        }
        if let (Some(last), Some(kept_last)) = (self.points.last(), kept.last())
            && last != kept_last
        {
            kept.push(*last);
        }
        TimeIndex { points: kept }
    }

    /// The points, sorted by byte and by time.
    pub(crate) fn points(&self) -> &[IndexPoint] {
        &self.points
    }

    /// Whether the index has no points.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The byte offset where media time `ms` starts: the last point with time <= ms.
    pub(crate) fn byte_at(&self, ms: u64) -> Option<u64> {
        let after = self.points.partition_point(|p| p.ms <= ms);
        after.checked_sub(1).map(|i| self.points[i].byte)
    }

    /// The media time at byte offset `byte`: the last point with byte <= byte.
    pub(crate) fn time_at(&self, byte: u64) -> Option<u64> {
        let after = self.points.partition_point(|p| p.byte <= byte);
        after.checked_sub(1).map(|i| self.points[i].ms)
    }
}

// Stored indexes go back through `new`, so one edited by hand still holds the sorted invariant.
impl<'de> Deserialize<'de> for TimeIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<IndexPoint>::deserialize(deserializer).map(TimeIndex::new)
    }
}

/// Why a file's container could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    /// Reading the file failed.
    #[error("reading the container: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes match no container kino reads.
    #[error("not a recognised container")]
    Unknown,
    /// The container's structure is broken, truncated or beyond kino's limits.
    #[error("malformed {container}: {reason}")]
    Malformed {
        /// The container's name.
        container: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// The most top-level headers a probe reads one by one (MP4 boxes before `moov`, WebM Segment
/// children); real files have a handful, or one per Cluster, and this bounds a file of tiny ones.
const WALK_LIMIT: usize = 100_000;

/// The EBML header's element id, which opens every WebM and Matroska file.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// Reads a file's container with positioned reads; never reads the whole file.
pub(crate) fn probe(file: &File, len: u64) -> Result<MediaInfo, ProbeError> {
    let source = Source { file, len };
    let head = source.read_head(12)?;
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        mp4::parse(&source)
    } else if head.starts_with(&EBML_MAGIC) {
        webm::parse(&source)
    } else {
        Err(ProbeError::Unknown)
    }
}

/// A file of known length, read only with positioned reads because the handle is shared.
struct Source<'a> {
    file: &'a File,
    len: u64,
}

impl Source<'_> {
    /// Reads up to `max` bytes from offset `at`, fewer where the file ends first.
    fn read_upto(&self, at: u64, max: usize) -> Result<Vec<u8>, ProbeError> {
        let available = self.len.saturating_sub(at);
        let n = usize::try_from(available).map_or(max, |a| a.min(max));
        let mut buf = vec![0; n];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }

    /// Reads up to `max` bytes from the start of the file.
    fn read_head(&self, max: usize) -> Result<Vec<u8>, ProbeError> {
        self.read_upto(0, max)
    }

    /// Reads exactly `len` bytes at `at`, refusing reads past the end or above `limit`.
    fn read_exact(
        &self,
        at: u64,
        len: u64,
        limit: u64,
        container: &'static str,
    ) -> Result<Vec<u8>, ProbeError> {
        if len > limit {
            return Err(malformed(container, format!("a {len}-byte element is over the {limit}-byte limit")));
        }
        let end = at.checked_add(len).filter(|&end| end <= self.len);
        if end.is_none() {
            return Err(malformed(container, "an element runs past the end of the file"));
        }
        let len = usize::try_from(len).map_err(|_| malformed(container, "element too large"))?;
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }
}

/// Builds a [`ProbeError::Malformed`].
fn malformed(container: &'static str, reason: impl Into<String>) -> ProbeError {
    ProbeError::Malformed { container, reason: reason.into() }
}

/// A cursor over big-endian fields in a byte slice; every read fails cleanly at the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Takes the next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len())?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Some(bytes)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    /// The bytes not yet read.
    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// Converts `value` in units of `1/scale` seconds to milliseconds, `None` when `scale` is 0.
fn to_ms(value: u64, scale: u64) -> Option<u64> {
    let ms = u128::from(value) * 1000 / u128::from(scale.max(1));
    (scale != 0).then(|| u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::os::unix::fs::FileExt;

    use super::*;

    /// A deterministic xorshift generator, so failures reproduce.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Probes copies of the file at `path` cut at many lengths; each must return, Ok or Err.
    pub(super) fn probe_truncations(path: &str) {
        let bytes = std::fs::read(path).unwrap();
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&bytes, 0).unwrap();
        let total = bytes.len() as u64;
        let mut lengths: Vec<u64> = (0..40_000).step_by(997).collect();
        lengths.extend([total / 2, total - 1000, total - 100, total - 9, total - 1]);
        lengths.sort_unstable();
        // Descending, so one file is cut shorter and shorter.
        for len in lengths.into_iter().rev() {
            file.set_len(len).unwrap();
            let _ = probe(&file, len);
        }
    }

    /// Probes copies of the file at `path` with 1–3 random bytes flipped, three rounds in four
    /// inside `hot` and the rest anywhere; each must return, Ok or Err.
    pub(super) fn probe_flips(path: &str, hot: Range<u64>, seed: u64) {
        let bytes = std::fs::read(path).unwrap();
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&bytes, 0).unwrap();
        let total = bytes.len() as u64;
        let mut state = seed;
        for round in 0..300 {
            let span = if round % 4 == 0 { 0..total } else { hot.clone() };
            let flips: Vec<(usize, u8)> = (0..1 + round % 3)
                .map(|_| {
                    let at = span.start + xorshift(&mut state) % (span.end - span.start);
                    (at as usize, xorshift(&mut state).to_le_bytes()[0] | 1)
                })
                .collect();
            for &(at, mask) in &flips {
                file.write_all_at(&[bytes[at] ^ mask], at as u64).unwrap();
            }
            let _ = probe(&file, total);
            for &(at, _) in &flips {
                file.write_all_at(&bytes[at..=at], at as u64).unwrap();
            }
        }
    }

    fn point(byte: u64, ms: u64) -> IndexPoint {
        IndexPoint { byte, ms }
    }

    #[test]
    fn thinning_keeps_one_point_per_gap_and_both_ends() {
        let index = TimeIndex::new((0..100).map(|i| IndexPoint { byte: i * 10, ms: i * 40 }).collect());
        let thin = index.thinned(1000);
        assert_eq!(thin.points().first(), index.points().first());
        assert_eq!(thin.points().last(), index.points().last());
        assert!(thin.points().windows(2).rev().skip(1).all(|w| w[1].ms - w[0].ms >= 1000));
        assert_eq!(thin.points().len(), 5);
    }

    #[test]
    fn time_index_sorts_and_drops_duplicates() {
        let index = TimeIndex::new(vec![point(300, 20), point(100, 0), point(300, 20), point(200, 10)]);
        assert_eq!(index.points(), [point(100, 0), point(200, 10), point(300, 20)]);
    }

    #[test]
    fn time_index_drops_points_whose_time_runs_backwards() {
        let index = TimeIndex::new(vec![point(100, 0), point(200, 50), point(300, 20), point(400, 60)]);
        assert_eq!(index.points(), [point(100, 0), point(200, 50), point(400, 60)]);
    }

    #[test]
    fn time_index_lookups_take_the_last_point_at_or_before() {
        let index = TimeIndex::new(vec![point(100, 0), point(200, 1000), point(300, 2000)]);
        assert_eq!(index.byte_at(0), Some(100));
        assert_eq!(index.byte_at(1500), Some(200));
        assert_eq!(index.byte_at(u64::MAX), Some(300));
        assert_eq!(index.time_at(99), None);
        assert_eq!(index.time_at(250), Some(1000));
        assert_eq!(index.time_at(300), Some(2000));
        assert_eq!(TimeIndex::default().byte_at(5), None);
        assert!(TimeIndex::default().is_empty());
    }

    #[test]
    fn time_index_serializes_as_compact_pairs_and_resorts_on_load() {
        let index = TimeIndex::new(vec![point(100, 0), point(200, 1000)]);
        let json = serde_json::to_string(&index).unwrap();
        assert_eq!(json, "[[100,0],[200,1000]]");
        let loaded: TimeIndex = serde_json::from_str("[[200,1000],[100,0],[100,0]]").unwrap();
        assert_eq!(loaded, index);
    }

    #[test]
    fn probe_rejects_unknown_and_empty_files() {
        let mut file = tempfile::tempfile().unwrap();
        assert!(matches!(probe(&file, 0), Err(ProbeError::Unknown)));
        std::io::Write::write_all(&mut file, b"just some text, not a video").unwrap();
        assert!(matches!(probe(&file, 27), Err(ProbeError::Unknown)));
    }

    #[test]
    fn container_names_are_lowercase() {
        assert_eq!(Container::Mp4.as_str(), "mp4");
        assert_eq!(Container::WebM.as_str(), "webm");
    }
}
