//! ISO base media (MP4) parsing: the top-level box layout, then the `moov` box's tracks and sample tables.

use super::mp4box::{BoxError, BoxHeader, Boxes, Extent, MOOV_LIMIT, TopLevel, read_whole};
use super::{Container, Cursor, IndexPoint, MediaInfo, ProbeError, Source, TimeIndex, malformed, to_ms};

/// The container name in errors.
const NAME: &str = "mp4";

/// Reads an MP4 file: where `moov` lies against `mdat`, then what `moov` says.
pub(super) fn parse(source: &Source) -> Result<MediaInfo, ProbeError> {
    let layout = Layout::read(source)?;
    let moov = layout.moov.ok_or_else(|| malformed(NAME, "no moov box"))?;
    let whole = read_whole(source.file, &moov, source.len, MOOV_LIMIT)?;
    // No overflow: the header length is at most 16 and the box holds it.
    let movie = Movie::parse(&whole[(moov.extent.body - moov.extent.start) as usize..])?;

    let video = movie.tracks.iter().find(|t| &t.handler == b"vide");
    let audio = movie.tracks.iter().find(|t| &t.handler == b"soun");
    let indexed = video.or(movie.tracks.first());
    let points = match indexed {
        Some(track) => track.chunk_times(source.len)?,
        None => Vec::new(),
    };
    let (width, height) = video.map_or((None, None), Track::dimensions);
    let duration_ms = movie
        .duration_ms
        .filter(|&ms| ms > 0)
        .or_else(|| movie.tracks.iter().filter_map(|t| t.duration_ms).max());
    Ok(MediaInfo {
        container: Container::Mp4,
        duration_ms,
        width,
        height,
        video_codec: video.and_then(|t| t.entry.as_ref()).map(|e| codec_name(e.kind)),
        audio_codec: audio.and_then(|t| t.entry.as_ref()).map(|e| codec_name(e.kind)),
        faststart: layout.mdat.is_none_or(|mdat| moov.extent.start < mdat.start),
        time_index: TimeIndex::new(points),
    })
}

/// Maps a sample entry's fourcc to kino's codec name, keeping unknown fourccs as they are.
fn codec_name(kind: [u8; 4]) -> String {
    let name = match &kind {
        b"avc1" | b"avc3" => "h264",
        b"hev1" | b"hvc1" => "hevc",
        b"vp08" => "vp8",
        b"vp09" => "vp9",
        b"av01" => "av1",
        b"mp4a" => "aac",
        b"Opus" => "opus",
        b".mp3" => "mp3",
        b"fLaC" => "flac",
        other => return String::from_utf8_lossy(other).into_owned(),
    };
    name.to_owned()
}

/// Where the top-level `moov` and first `mdat` boxes lie.
#[derive(Debug, Default)]
struct Layout {
    moov: Option<BoxHeader>,
    mdat: Option<Extent>,
}

impl Layout {
    /// Walks top-level boxes until `moov` is found or the file ends.
    fn read(source: &Source) -> Result<Self, ProbeError> {
        let mut layout = Layout::default();
        for header in TopLevel::new(source.file, source.len) {
            let header = header?;
            match &header.kind {
                b"moov" => {
                    layout.moov = Some(header);
                    // Nothing after `moov` changes what is reported.
                    break;
                }
                b"mdat" if layout.mdat.is_none() => layout.mdat = Some(header.extent),
                _ => {}
            }
        }
        Ok(layout)
    }
}

/// A box error in the prober's terms.
impl From<BoxError> for ProbeError {
    fn from(error: BoxError) -> Self {
        match error {
            BoxError::Io(error) => ProbeError::Io(error),
            BoxError::Malformed(reason) => malformed(NAME, reason),
        }
    }
}

/// What the `moov` box says.
struct Movie<'a> {
    duration_ms: Option<u64>,
    tracks: Vec<Track<'a>>,
}

impl<'a> Movie<'a> {
    fn parse(moov: &'a [u8]) -> Result<Self, ProbeError> {
        let mvhd = Boxes::find(moov, b"mvhd")?.ok_or_else(|| malformed(NAME, "no mvhd box"))?;
        let (timescale, duration) = media_times(mvhd).ok_or_else(|| malformed(NAME, "mvhd is cut off"))?;
        let mut tracks = Vec::new();
        for child in Boxes::new(moov) {
            let (kind, body) = child?;
            if &kind == b"trak" {
                tracks.push(Track::parse(body)?);
            }
        }
        Ok(Movie { duration_ms: duration.and_then(|d| to_ms(d, timescale.into())), tracks })
    }
}

/// Reads the timescale and duration shared by `mvhd` and `mdhd`; a duration of all ones is unknown.
fn media_times(body: &[u8]) -> Option<(u32, Option<u64>)> {
    let mut cursor = Cursor::new(body);
    let version = cursor.u8()?;
    cursor.skip(3)?;
    let (timescale, duration) = if version == 1 {
        cursor.skip(16)?;
        (cursor.u32()?, cursor.u64()?)
    } else {
        cursor.skip(8)?;
        let timescale = cursor.u32()?;
        let duration = cursor.u32()?;
        let duration = if duration == u32::MAX { u64::MAX } else { duration.into() };
        (timescale, duration)
    };
    Some((timescale, (duration != u64::MAX).then_some(duration)))
}

/// One `trak` box.
struct Track<'a> {
    /// The handler type: `vide`, `soun`, …
    handler: [u8; 4],
    /// The presentation size from `tkhd`, in whole pixels.
    width: u32,
    height: u32,
    /// Units per second of the sample tables.
    timescale: u32,
    duration_ms: Option<u64>,
    entry: Option<SampleEntry>,
    /// The `stbl` body, read only for the indexed track.
    stbl: Option<&'a [u8]>,
}

/// The first sample description of a track.
struct SampleEntry {
    kind: [u8; 4],
    /// The coded size from a visual sample entry; 0 for other kinds.
    width: u16,
    height: u16,
}

impl<'a> Track<'a> {
    fn parse(trak: &'a [u8]) -> Result<Self, ProbeError> {
        let (width, height) = match Boxes::find(trak, b"tkhd")? {
            Some(tkhd) => presentation_size(tkhd)?,
            None => (0, 0),
        };
        let mdia = Boxes::find(trak, b"mdia")?.unwrap_or_default();
        let handler = match Boxes::find(mdia, b"hdlr")? {
            Some(hdlr) => hdlr
                .get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed(NAME, "hdlr is cut off"))?,
            None => *b"\0\0\0\0",
        };
        let (timescale, duration) = match Boxes::find(mdia, b"mdhd")? {
            Some(mdhd) => media_times(mdhd).ok_or_else(|| malformed(NAME, "mdhd is cut off"))?,
            None => (0, None),
        };
        let stbl = Boxes::find_path(mdia, &[b"minf", b"stbl"])?;
        let entry = match stbl.map(|stbl| Boxes::find(stbl, b"stsd")).transpose()? {
            Some(Some(stsd)) => first_entry(stsd)?,
            _ => None,
        };
        Ok(Track {
            handler,
            width,
            height,
            timescale,
            duration_ms: duration.and_then(|d| to_ms(d, timescale.into())),
            entry,
            stbl,
        })
    }

    /// The picture size: `tkhd`'s, else the sample entry's when `tkhd` leaves it 0.
    fn dimensions(&self) -> (Option<u32>, Option<u32>) {
        let (mut width, mut height) = (self.width, self.height);
        if let Some(entry) = self.entry.as_ref().filter(|_| width == 0 || height == 0) {
            (width, height) = (entry.width.into(), entry.height.into());
        }
        let nonzero = |n: u32| (n > 0).then_some(n);
        (nonzero(width), nonzero(height))
    }

    /// The file offset and media time of each chunk's first sample, skipping chunks past `len`.
    fn chunk_times(&self, len: u64) -> Result<Vec<IndexPoint>, ProbeError> {
        let Some(stbl) = self.stbl else {
            return Ok(Vec::new());
        };
        let offsets = match (Boxes::find(stbl, b"stco")?, Boxes::find(stbl, b"co64")?) {
            (Some(stco), _) => table(stco, "stco", |c| c.u32().map(u64::from))?,
            (None, Some(co64)) => table(co64, "co64", |c| c.u64())?,
            (None, None) => return Ok(Vec::new()),
        };
        let (Some(stsc), Some(stts)) = (Boxes::find(stbl, b"stsc")?, Boxes::find(stbl, b"stts")?) else {
            return Ok(Vec::new());
        };
        let runs = table(stsc, "stsc", |c| {
            let first_chunk = c.u32()?;
            let per_chunk = c.u32()?;
            c.skip(4)?;
            Some((u64::from(first_chunk), u64::from(per_chunk)))
        })?;
        let durations = table(stts, "stts", |c| Some((c.u32()?, c.u32()?)))?;
        let sample_count = match Boxes::find(stbl, b"stsz")? {
            Some(stsz) => Some(sample_count(stsz)?),
            None => None,
        };

        let mut clock = Clock::new(&durations);
        let mut points = Vec::new();
        let mut run = 0;
        let mut sample = 0u64;
        for (chunk, &byte) in (1u64..).zip(&offsets) {
            while runs.get(run + 1).is_some_and(|&(first, _)| first <= chunk) {
                run += 1;
            }
            // A chunk before the first run's first chunk has no samples (a broken table).
            let per_chunk = runs.get(run).filter(|&&(first, _)| first <= chunk).map_or(0, |r| r.1);
            if sample_count.is_some_and(|count| sample >= count) {
                break;
            }
            let Some(ms) = clock.time_of(sample).and_then(|t| to_ms(t, self.timescale.into())) else {
                break;
            };
            if byte < len {
                points.push(IndexPoint { byte, ms });
            }
            sample = sample.saturating_add(per_chunk);
        }
        Ok(points)
    }
}

/// Reads `tkhd`'s width and height, 16.16 fixed point in the box's last 8 bytes.
fn presentation_size(tkhd: &[u8]) -> Result<(u32, u32), ProbeError> {
    let min_len = if tkhd.first() == Some(&1) { 96 } else { 84 };
    if tkhd.len() < min_len {
        return Err(malformed(NAME, "tkhd is cut off"));
    }
    let mut cursor = Cursor::new(&tkhd[tkhd.len() - 8..]);
    let width = cursor.u32().unwrap_or_default() >> 16;
    let height = cursor.u32().unwrap_or_default() >> 16;
    Ok((width, height))
}

/// Reads the first sample entry of an `stsd` box.
fn first_entry(stsd: &[u8]) -> Result<Option<SampleEntry>, ProbeError> {
    let entries = stsd.get(8..).ok_or_else(|| malformed(NAME, "stsd is cut off"))?;
    let Some(entry) = Boxes::new(entries).next() else {
        return Ok(None);
    };
    let (kind, body) = entry?;
    // A visual sample entry (ISO 14496-12 §12.1.3) has 24 bytes of fields before width and height.
    let mut cursor = Cursor::new(body);
    let size = cursor.skip(24).and_then(|()| Some((cursor.u16()?, cursor.u16()?)));
    let (width, height) = size.unwrap_or_default();
    Ok(Some(SampleEntry { kind, width, height }))
}

/// Reads a full box holding an entry count and then that many entries.
fn table<T>(body: &[u8], name: &str, entry: impl Fn(&mut Cursor) -> Option<T>) -> Result<Vec<T>, ProbeError> {
    let cut_off = || malformed(NAME, format!("{name} is cut off"));
    let mut cursor = Cursor::new(body);
    cursor.skip(4).ok_or_else(cut_off)?;
    let count = cursor.u32().ok_or_else(cut_off)?;
    // Every entry takes at least 4 bytes, so the body bounds the allocation, not the count.
    let capacity = (count as usize).min(cursor.rest().len() / 4);
    let mut entries = Vec::with_capacity(capacity);
    for _ in 0..count {
        entries.push(entry(&mut cursor).ok_or_else(cut_off)?);
    }
    Ok(entries)
}

/// Reads `stsz`'s sample count.
fn sample_count(stsz: &[u8]) -> Result<u64, ProbeError> {
    let mut cursor = Cursor::new(stsz);
    let count = cursor.skip(8).and_then(|()| cursor.u32());
    count.map(u64::from).ok_or_else(|| malformed(NAME, "stsz is cut off"))
}

/// Walks `stts` runs forward to find the decode time of increasing sample numbers.
struct Clock<'a> {
    runs: &'a [(u32, u32)],
    run: usize,
    /// Samples already passed in the current run.
    used: u64,
    sample: u64,
    time: u64,
}

impl<'a> Clock<'a> {
    fn new(runs: &'a [(u32, u32)]) -> Self {
        Clock { runs, run: 0, used: 0, sample: 0, time: 0 }
    }

    /// The decode time of `sample` (0-based, not before the last one asked), in timescale units;
    /// `None` past the table's end or on overflow.
    fn time_of(&mut self, sample: u64) -> Option<u64> {
        loop {
            let &(count, delta) = self.runs.get(self.run)?;
            let left = u64::from(count) - self.used;
            if left == 0 {
                self.run += 1;
                self.used = 0;
                continue;
            }
            if self.sample >= sample {
                return Some(self.time);
            }
            // Whole runs at once, so a run of 2^32 samples costs one step.
            let step = left.min(sample - self.sample);
            self.time = self.time.checked_add(step * u64::from(delta))?;
            self.used += step;
            self.sample += step;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;

    use super::super::probe;
    use super::super::tests::{probe_flips, probe_truncations};
    use super::*;

    const H264: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4");
    const MOOV_AT_END: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-moov-at-end.mp4");

    fn probe_path(path: &str) -> MediaInfo {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        probe(&file, len).unwrap()
    }

    /// Every top-level box of the file at `path`, as (fourcc, start, end).
    fn top_level(path: &str) -> Vec<(String, u64, u64)> {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        TopLevel::new(&file, len)
            .map(|h| h.unwrap())
            .map(|h| (super::super::mp4box::fourcc(h.kind), h.extent.start, h.extent.end))
            .collect()
    }

    fn assert_sample(path: &str, faststart: bool) {
        let info = probe_path(path);
        assert_eq!(info.container, Container::Mp4);
        assert_eq!(info.duration_ms, Some(20_000));
        assert_eq!((info.width, info.height), (Some(640), Some(360)));
        assert_eq!(info.video_codec.as_deref(), Some("h264"));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
        assert_eq!(info.faststart, faststart);

        let points = info.time_index.points();
        assert!(!points.is_empty());
        assert!(points.windows(2).all(|w| w[0].byte < w[1].byte && w[0].ms <= w[1].ms));
        assert!(points[0].ms < 100, "first point at {} ms", points[0].ms);
        assert!(points.last().unwrap().ms <= 20_000);

        let boxes = top_level(path);
        let (_, mdat_start, mdat_end) = boxes.iter().find(|b| b.0 == "mdat").unwrap().clone();
        for p in points {
            assert!((mdat_start + 8..mdat_end).contains(&p.byte), "{p:?} outside mdat");
            assert_eq!(info.time_index.time_at(p.byte), Some(p.ms));
            if points.iter().filter(|q| q.ms == p.ms).count() == 1 {
                assert_eq!(info.time_index.byte_at(p.ms), Some(p.byte));
            }
        }
    }

    #[test]
    fn faststart_mp4_reports_h264_aac_640x360_for_20_seconds() {
        assert_sample(H264, true);
        let boxes = top_level(H264);
        let starts: Vec<_> = boxes.iter().map(|(k, s, _)| (k.as_str(), *s)).collect();
        assert_eq!(starts[..2], [("ftyp", 0), ("moov", 32)]);
        assert!(starts.contains(&("mdat", 16576)));
    }

    #[test]
    fn mp4_with_moov_at_the_end_is_not_faststart() {
        assert_sample(MOOV_AT_END, false);
        let boxes = top_level(MOOV_AT_END);
        let starts: Vec<_> = boxes.iter().map(|(k, s, e)| (k.as_str(), *s, e - s)).collect();
        assert_eq!(starts[2], ("mdat", 40, 191_986));
        assert_eq!(starts[3].0, "moov");
        assert_eq!(starts[3].1, 192_026);
    }

    #[test]
    fn mp4_without_moov_is_malformed() {
        let mut file = tempfile::tempfile().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0, 0, 0, 16]);
        bytes.extend_from_slice(b"ftypisom\0\0\0\0");
        bytes.extend_from_slice(&[0, 0, 0, 12]);
        bytes.extend_from_slice(b"mdat\0\0\0\0");
        file.write_all(&bytes).unwrap();
        let err = probe(&file, bytes.len() as u64).unwrap_err();
        assert!(matches!(err, ProbeError::Malformed { container: "mp4", .. }), "{err}");
    }

    #[test]
    fn mp4_with_oversized_moov_is_refused_without_reading_it() {
        let mut file = tempfile::tempfile().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0, 0, 0, 16]);
        bytes.extend_from_slice(b"ftypisom\0\0\0\0");
        bytes.extend_from_slice(&[0, 0, 0, 1]);
        bytes.extend_from_slice(b"moov");
        bytes.extend_from_slice(&(1u64 << 40).to_be_bytes());
        file.write_all(&bytes).unwrap();
        // The claimed length is what the caller passes, so no 1 TiB file is needed.
        let err = probe(&file, 1 << 41).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn stts_runs_give_chunk_times_without_walking_each_sample() {
        let runs = [(u32::MAX, 1), (10, 100)];
        let mut clock = Clock::new(&runs);
        assert_eq!(clock.time_of(0), Some(0));
        assert_eq!(clock.time_of(u64::from(u32::MAX)), Some(u64::from(u32::MAX)));
        assert_eq!(clock.time_of(u64::from(u32::MAX) + 2), Some(u64::from(u32::MAX) + 200));
        assert_eq!(clock.time_of(u64::from(u32::MAX) + 10), None);
    }

    #[test]
    fn truncated_mp4s_never_panic() {
        probe_truncations(H264);
        probe_truncations(MOOV_AT_END);
    }

    #[test]
    fn mp4s_with_flipped_bytes_never_panic() {
        // Most flips land in the boxes the parser reads: the header and `moov`.
        probe_flips(H264, 0..16_576, 0x9E37_79B9_7F4A_7C15);
        let total = std::fs::metadata(MOOV_AT_END).unwrap().len();
        probe_flips(MOOV_AT_END, 192_026..total, 0xD1B5_4A32_D192_ED03);
        probe_flips(MOOV_AT_END, 0..64, 0x2545_F491_4F6C_DD1D);
    }
}
