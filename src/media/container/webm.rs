//! WebM and Matroska parsing: the EBML header, then the Segment's Info, Tracks and Cues.

use super::{Container, Cursor, IndexPoint, MediaInfo, ProbeError, Source, TimeIndex, WALK_LIMIT, malformed};

/// The container name in errors.
const NAME: &str = "webm";

/// The largest element read whole into memory; Cues for a long film take a few hundred KiB.
const ELEMENT_LIMIT: u64 = 16 << 20;

/// Element ids (Matroska specification, RFC 9559 §5.1), marker bits included.
mod id {
    pub(super) const EBML: u32 = 0x1A45_DFA3;
    pub(super) const DOC_TYPE: u32 = 0x4282;
    pub(super) const SEGMENT: u32 = 0x1853_8067;
    pub(super) const SEEK_HEAD: u32 = 0x114D_9B74;
    pub(super) const SEEK: u32 = 0x4DBB;
    pub(super) const SEEK_ID: u32 = 0x53AB;
    pub(super) const SEEK_POSITION: u32 = 0x53AC;
    pub(super) const INFO: u32 = 0x1549_A966;
    pub(super) const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub(super) const DURATION: u32 = 0x4489;
    pub(super) const TRACKS: u32 = 0x1654_AE6B;
    pub(super) const TRACK_ENTRY: u32 = 0xAE;
    pub(super) const TRACK_NUMBER: u32 = 0xD7;
    pub(super) const TRACK_TYPE: u32 = 0x83;
    pub(super) const CODEC_ID: u32 = 0x86;
    pub(super) const VIDEO: u32 = 0xE0;
    pub(super) const PIXEL_WIDTH: u32 = 0xB0;
    pub(super) const PIXEL_HEIGHT: u32 = 0xBA;
    pub(super) const CUES: u32 = 0x1C53_BB6B;
    pub(super) const CUE_POINT: u32 = 0xBB;
    pub(super) const CUE_TIME: u32 = 0xB3;
    pub(super) const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub(super) const CUE_TRACK: u32 = 0xF7;
    pub(super) const CUE_CLUSTER_POSITION: u32 = 0xF1;
    pub(super) const CLUSTER: u32 = 0x1F43_B675;
}

/// The default TimestampScale: one tick is a millisecond.
const DEFAULT_SCALE_NS: u64 = 1_000_000;

/// Reads a WebM or Matroska file: header, then Info, Tracks and Cues wherever they lie.
pub(super) fn parse(source: &Source) -> Result<MediaInfo, ProbeError> {
    let segment = find_segment(source)?;
    let places = Places::find(source, &segment)?;

    let (scale_ns, duration_ms) = match places.info {
        Some(at) => parse_info(&read_body(source, at, id::INFO)?)?,
        None => (DEFAULT_SCALE_NS, None),
    };
    let tracks = match places.tracks {
        Some(at) => parse_tracks(&read_body(source, at, id::TRACKS)?)?,
        None => Vec::new(),
    };
    let video = tracks.iter().find(|t| t.kind == TrackKind::Video);
    let audio = tracks.iter().find(|t| t.kind == TrackKind::Audio);
    let points = match places.cues {
        Some(at) => {
            let cues = parse_cues(&read_body(source, at, id::CUES)?)?;
            cue_points(&cues, video.map(|t| t.number), &segment, scale_ns, source.len)
        }
        None => Vec::new(),
    };
    Ok(MediaInfo {
        container: Container::WebM,
        duration_ms,
        width: video.and_then(|t| t.width),
        height: video.and_then(|t| t.height),
        video_codec: video.and_then(Track::codec_name),
        audio_codec: audio.and_then(Track::codec_name),
        // Players start from the header and fetch Cues by range when they seek.
        faststart: true,
        time_index: TimeIndex::new(points),
    })
}

/// Maps a Matroska CodecID to kino's codec name, keeping unknown ids as they are.
fn codec_name(codec: &str) -> String {
    let name = match codec {
        "V_VP8" => "vp8",
        "V_VP9" => "vp9",
        "V_AV1" => "av1",
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        "A_OPUS" => "opus",
        "A_VORBIS" => "vorbis",
        "A_MPEG/L3" => "mp3",
        "A_FLAC" => "flac",
        // Old Matroska files name the AAC profile too: `A_AAC/MPEG4/LC`.
        aac if aac.starts_with("A_AAC") => "aac",
        other => return other.to_owned(),
    };
    name.to_owned()
}

/// An element's place in the file.
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u32,
    /// Where the data starts, after the id and size.
    data: u64,
    /// Where the element ends: its parent's end when its size is unknown.
    end: u64,
    unknown_size: bool,
}

/// Reads the header of the element at `at` inside a parent ending at `parent_end`;
/// `None` when no complete header fits before the end of the file.
fn read_element(source: &Source, at: u64, parent_end: u64) -> Result<Option<Element>, ProbeError> {
    // The longest header: a 4-byte id and an 8-byte size.
    let head = source.read_upto(at, 12)?;
    let mut cursor = Cursor::new(&head);
    let Some(id) = read_id(&mut cursor) else {
        return if head.len() < 12 { Ok(None) } else { Err(bad_header(at)) };
    };
    let Some(size) = read_size(&mut cursor) else {
        return if head.len() < 12 { Ok(None) } else { Err(bad_header(at)) };
    };
    let data = at + cursor.pos as u64;
    let (end, unknown_size) = match size {
        Some(size) => (data.checked_add(size).ok_or_else(|| bad_header(at))?, false),
        None => (parent_end.max(data), true),
    };
    Ok(Some(Element { id, data, end, unknown_size }))
}

fn bad_header(at: u64) -> ProbeError {
    malformed(NAME, format!("invalid element header at {at}"))
}

/// Reads an element id, 1 to 4 bytes with the length marker kept (RFC 8794 §5).
fn read_id(cursor: &mut Cursor) -> Option<u32> {
    let first = cursor.u8()?;
    let len = first.leading_zeros() + 1;
    if len > 4 {
        return None;
    }
    let mut id = u32::from(first);
    for _ in 1..len {
        id = id << 8 | u32::from(cursor.u8()?);
    }
    Some(id)
}

/// Reads an element data size, 1 to 8 bytes; `Some(None)` when all its value bits are ones,
/// which means unknown (RFC 8794 §6.2).
fn read_size(cursor: &mut Cursor) -> Option<Option<u64>> {
    let first = cursor.u8()?;
    let len = first.leading_zeros() + 1;
    if len > 8 {
        return None;
    }
    let mask = 0xFF_u8.checked_shr(len).unwrap_or(0);
    let mut value = u64::from(first & mask);
    let mut all_ones = first & mask == mask;
    for _ in 1..len {
        let byte = cursor.u8()?;
        value = value << 8 | u64::from(byte);
        all_ones &= byte == 0xFF;
    }
    Some((!all_ones).then_some(value))
}

/// Reads the whole body of the element expected to be `id` at `at`.
fn read_body(source: &Source, at: u64, id: u32) -> Result<Vec<u8>, ProbeError> {
    let element = read_element(source, at, source.len)?
        .filter(|e| e.id == id && !e.unknown_size)
        .ok_or_else(|| malformed(NAME, format!("no element {id:#X} at {at}")))?;
    source.read_exact(element.data, element.end - element.data, ELEMENT_LIMIT, NAME)
}

/// The child elements of a body held in memory, as (id, data).
struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<(u32, &'a [u8]), ProbeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut cursor = Cursor::new(self.rest);
        let child = read_id(&mut cursor).zip(read_size(&mut cursor)).and_then(|(id, size)| {
            let data = cursor.rest();
            let len = match size {
                Some(size) => usize::try_from(size).ok().filter(|&s| s <= data.len())?,
                None => data.len(),
            };
            let (data, rest) = data.split_at(len);
            Some((id, data, rest))
        });
        match child {
            Some((id, data, rest)) => {
                self.rest = rest;
                Some(Ok((id, data)))
            }
            None => {
                self.rest = &[];
                Some(Err(malformed(NAME, "an element overruns its parent")))
            }
        }
    }
}

fn children(body: &[u8]) -> Children<'_> {
    Children { rest: body }
}

/// Reads an unsigned integer element, at most 8 bytes.
fn uint(data: &[u8]) -> Result<u64, ProbeError> {
    if data.len() > 8 {
        return Err(malformed(NAME, "an integer is longer than 8 bytes"));
    }
    Ok(data.iter().fold(0, |n, &b| n << 8 | u64::from(b)))
}

/// Reads a float element: 0, 4 or 8 bytes.
fn float(data: &[u8]) -> Result<f64, ProbeError> {
    match data.len() {
        0 => Ok(0.0),
        4 => Ok(f32::from_be_bytes(data.try_into().unwrap_or_default()).into()),
        8 => Ok(f64::from_be_bytes(data.try_into().unwrap_or_default())),
        n => Err(malformed(NAME, format!("a float is {n} bytes"))),
    }
}

/// Reads a string element, dropping the zero padding writers may leave.
fn string(data: &[u8]) -> String {
    String::from_utf8_lossy(data).trim_end_matches('\0').to_owned()
}

/// Checks the EBML header and returns the Segment that follows it.
fn find_segment(source: &Source) -> Result<Element, ProbeError> {
    let header = read_element(source, 0, source.len)?
        .filter(|e| e.id == id::EBML && !e.unknown_size)
        .ok_or_else(|| malformed(NAME, "no EBML header"))?;
    let mut at = header.end;
    let header = source.read_exact(header.data, header.end - header.data, ELEMENT_LIMIT, NAME)?;
    // DocType defaults to "matroska" when absent (RFC 8794 §11.2.6).
    let mut doc_type = String::from("matroska");
    for child in children(&header) {
        let (id, data) = child?;
        if id == id::DOC_TYPE {
            doc_type = string(data);
        }
    }
    if doc_type != "webm" && doc_type != "matroska" {
        return Err(malformed(NAME, format!("unsupported DocType {doc_type:?}")));
    }
    // Top-level Void or CRC elements may sit between the header and the Segment.
    for _ in 0..WALK_LIMIT {
        let Some(element) = read_element(source, at, source.len)? else {
            break;
        };
        if element.id == id::SEGMENT {
            return Ok(Element {
                // A truncated file's Segment ends with the file.
                end: element.end.min(source.len),
                ..element
            });
        }
        if element.unknown_size {
            return Err(malformed(NAME, "a top-level element has an unknown size"));
        }
        at = element.end;
    }
    Err(malformed(NAME, "no Segment"))
}

/// Where the Segment's Info, Tracks and Cues elements start.
#[derive(Debug, Default)]
struct Places {
    info: Option<u64>,
    tracks: Option<u64>,
    cues: Option<u64>,
}

impl Places {
    /// Finds the elements in the Segment's head, then through its SeekHeads, then, when Cues are
    /// still missing, by walking past the Clusters' headers.
    fn find(source: &Source, segment: &Element) -> Result<Self, ProbeError> {
        let mut places = Places::default();
        let mut seek_heads = Vec::new();
        let resume = places.walk(source, segment, segment.data, true, &mut seek_heads)?;

        // A SeekHead may point at a second SeekHead; following one level is what writers use.
        let mut followed = 0;
        while let Some(at) = seek_heads.pop().filter(|_| followed < 2) {
            followed += 1;
            if at >= source.len {
                continue;
            }
            let body = read_body(source, at, id::SEEK_HEAD)?;
            for (id, position) in parse_seek_head(&body)? {
                let Some(at) = segment.data.checked_add(position) else {
                    continue;
                };
                match id {
                    id::SEEK_HEAD => seek_heads.push(at),
                    _ => places.note(id, at),
                }
            }
        }

        if places.cues.is_none()
            && let Some(at) = resume
        {
            places.walk(source, segment, at, false, &mut Vec::new())?;
        }
        // Positions from a truncated file's SeekHead may lie past its end.
        for place in [&mut places.info, &mut places.tracks, &mut places.cues] {
            *place = place.filter(|&at| at < source.len);
        }
        Ok(places)
    }

    /// Records `at` as the place of element `id` unless one is known already.
    fn note(&mut self, id: u32, at: u64) {
        let place = match id {
            id::INFO => &mut self.info,
            id::TRACKS => &mut self.tracks,
            id::CUES => &mut self.cues,
            _ => return,
        };
        place.get_or_insert(at);
    }

    /// Walks the Segment's children from `at`, noting places and SeekHeads; with
    /// `stop_at_cluster`, stops at the first Cluster and returns where it starts when the walk
    /// could go on past it.
    fn walk(
        &mut self,
        source: &Source,
        segment: &Element,
        mut at: u64,
        stop_at_cluster: bool,
        seek_heads: &mut Vec<u64>,
    ) -> Result<Option<u64>, ProbeError> {
        for _ in 0..WALK_LIMIT {
            if at >= segment.end {
                return Ok(None);
            }
            let Some(element) = read_element(source, at, segment.end)? else {
                return Ok(None);
            };
            match element.id {
                id::SEEK_HEAD => seek_heads.push(at),
                id::CLUSTER if stop_at_cluster => {
                    return Ok((!element.unknown_size).then_some(at));
                }
                id => self.note(id, at),
            }
            // An unknown size runs to the end of the Segment: nothing can follow it.
            if element.unknown_size {
                return Ok(None);
            }
            at = element.end;
        }
        Ok(None)
    }
}

/// Reads a SeekHead's entries as (element id, position relative to the Segment's data).
fn parse_seek_head(body: &[u8]) -> Result<Vec<(u32, u64)>, ProbeError> {
    let mut entries = Vec::new();
    for seek in children(body) {
        let (id, data) = seek?;
        if id != id::SEEK {
            continue;
        }
        let (mut target, mut position) = (None, None);
        for child in children(data) {
            match child? {
                (id::SEEK_ID, bytes) => target = Some(uint(bytes)?),
                (id::SEEK_POSITION, bytes) => position = Some(uint(bytes)?),
                _ => {}
            }
        }
        if let (Some(target), Some(position)) = (target, position) {
            // Ids are at most 4 bytes; a longer one matches nothing.
            entries.push((u32::try_from(target).unwrap_or(0), position));
        }
    }
    Ok(entries)
}

/// Reads Info: the TimestampScale in nanoseconds and the duration in milliseconds.
fn parse_info(body: &[u8]) -> Result<(u64, Option<u64>), ProbeError> {
    let mut scale_ns = DEFAULT_SCALE_NS;
    let mut duration = None;
    for child in children(body) {
        match child? {
            (id::TIMESTAMP_SCALE, data) => scale_ns = uint(data)?,
            (id::DURATION, data) => duration = Some(float(data)?),
            _ => {}
        }
    }
    if scale_ns == 0 {
        return Err(malformed(NAME, "TimestampScale is 0"));
    }
    let duration_ms = duration
        .map(|ticks| ticks * scale_ns as f64 / 1e6)
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        // In range by the filter; `as` saturates at u64::MAX for absurd values.
        .map(|ms| ms.round() as u64);
    Ok((scale_ns, duration_ms))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Video,
    Audio,
    Other,
}

/// One TrackEntry.
#[derive(Debug)]
struct Track {
    number: u64,
    kind: TrackKind,
    codec: String,
    width: Option<u32>,
    height: Option<u32>,
}

impl Track {
    /// The track's codec name, `None` when it has no CodecID.
    fn codec_name(&self) -> Option<String> {
        (!self.codec.is_empty()).then(|| codec_name(&self.codec))
    }
}

/// Reads every TrackEntry in Tracks.
fn parse_tracks(body: &[u8]) -> Result<Vec<Track>, ProbeError> {
    let mut tracks = Vec::new();
    for entry in children(body) {
        let (id, data) = entry?;
        if id != id::TRACK_ENTRY {
            continue;
        }
        let mut track =
            Track { number: 0, kind: TrackKind::Other, codec: String::new(), width: None, height: None };
        for child in children(data) {
            match child? {
                (id::TRACK_NUMBER, data) => track.number = uint(data)?,
                (id::TRACK_TYPE, data) => {
                    track.kind = match uint(data)? {
                        1 => TrackKind::Video,
                        2 => TrackKind::Audio,
                        _ => TrackKind::Other,
                    };
                }
                (id::CODEC_ID, data) => track.codec = string(data),
                (id::VIDEO, video) => {
                    for field in children(video) {
                        match field? {
                            (id::PIXEL_WIDTH, data) => track.width = pixels(data)?,
                            (id::PIXEL_HEIGHT, data) => track.height = pixels(data)?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        tracks.push(track);
    }
    Ok(tracks)
}

/// Reads a pixel count, `None` when 0 or beyond `u32`.
fn pixels(data: &[u8]) -> Result<Option<u32>, ProbeError> {
    Ok(u32::try_from(uint(data)?).ok().filter(|&n| n > 0))
}

/// One cue: a time in TimestampScale ticks, the track, and the Cluster's Segment-relative position.
#[derive(Debug)]
struct Cue {
    ticks: u64,
    track: u64,
    position: u64,
}

/// Reads every CuePoint's track positions.
fn parse_cues(body: &[u8]) -> Result<Vec<Cue>, ProbeError> {
    let mut cues = Vec::new();
    for point in children(body) {
        let (id, data) = point?;
        if id != id::CUE_POINT {
            continue;
        }
        let mut ticks = None;
        let mut positions = Vec::new();
        for child in children(data) {
            match child? {
                (id::CUE_TIME, data) => ticks = Some(uint(data)?),
                (id::CUE_TRACK_POSITIONS, data) => {
                    let (mut track, mut position) = (0, None);
                    for field in children(data) {
                        match field? {
                            (id::CUE_TRACK, data) => track = uint(data)?,
                            (id::CUE_CLUSTER_POSITION, data) => position = Some(uint(data)?),
                            _ => {}
                        }
                    }
                    positions.extend(position.map(|p| (track, p)));
                }
                _ => {}
            }
        }
        let Some(ticks) = ticks else { continue };
        cues.extend(positions.into_iter().map(|(track, position)| Cue { ticks, track, position }));
    }
    Ok(cues)
}

/// Turns cues into index points: the video track's when it has any, else all of them.
fn cue_points(
    cues: &[Cue],
    video_track: Option<u64>,
    segment: &Element,
    scale_ns: u64,
    len: u64,
) -> Vec<IndexPoint> {
    let has_video_cues = video_track.is_some_and(|n| cues.iter().any(|c| c.track == n));
    cues.iter()
        .filter(|c| !has_video_cues || Some(c.track) == video_track)
        .filter_map(|c| {
            let byte = segment.data.checked_add(c.position).filter(|&b| b < len)?;
            let ms = u128::from(c.ticks) * u128::from(scale_ns) / 1_000_000;
            Some(IndexPoint { byte, ms: u64::try_from(ms).unwrap_or(u64::MAX) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    use super::super::probe;
    use super::super::tests::{probe_flips, probe_truncations};
    use super::*;

    const VP9: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-vp9.webm");

    #[test]
    fn webm_reports_vp9_opus_640x360_for_20_008_ms() {
        let file = File::open(VP9).unwrap();
        let len = file.metadata().unwrap().len();
        let info = probe(&file, len).unwrap();
        assert_eq!(info.container, Container::WebM);
        assert_eq!(info.duration_ms, Some(20_008));
        assert_eq!((info.width, info.height), (Some(640), Some(360)));
        assert_eq!(info.video_codec.as_deref(), Some("vp9"));
        assert_eq!(info.audio_codec.as_deref(), Some("opus"));
        assert!(info.faststart);
    }

    #[test]
    fn webm_cues_point_at_clusters_in_time_order() {
        let file = File::open(VP9).unwrap();
        let len = file.metadata().unwrap().len();
        let index = probe(&file, len).unwrap().time_index;
        let points = index.points();
        assert!(!points.is_empty());
        assert!(points.windows(2).all(|w| w[0].byte < w[1].byte && w[0].ms <= w[1].ms));
        assert!(points[0].ms < 100, "first cue at {} ms", points[0].ms);
        assert!(points.last().unwrap().ms <= 20_008);
        for p in points {
            let mut id = [0; 4];
            file.read_exact_at(&mut id, p.byte).unwrap();
            assert_eq!(u32::from_be_bytes(id), id::CLUSTER, "{p:?}");
            assert_eq!(index.time_at(p.byte), Some(p.ms));
            if points.iter().filter(|q| q.ms == p.ms).count() == 1 {
                assert_eq!(index.byte_at(p.ms), Some(p.byte));
            }
        }
    }

    #[test]
    fn ebml_sizes_decode_lengths_and_unknown() {
        let size = |bytes: &[u8]| read_size(&mut Cursor::new(bytes));
        assert_eq!(size(&[0x81]), Some(Some(1)));
        assert_eq!(size(&[0x40, 0x02]), Some(Some(2)));
        assert_eq!(size(&[0xFF]), Some(None));
        assert_eq!(size(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), Some(None));
        assert_eq!(size(&[0x01, 0, 0, 0, 0, 0, 0, 0x2A]), Some(Some(42)));
        assert_eq!(size(&[0x00, 0x81]), None);
        assert_eq!(size(&[0x40]), None);
        let id = |bytes: &[u8]| read_id(&mut Cursor::new(bytes));
        assert_eq!(id(&[0x1A, 0x45, 0xDF, 0xA3]), Some(id::EBML));
        assert_eq!(id(&[0xEC]), Some(0xEC));
        assert_eq!(id(&[0x08, 1, 2, 3, 4]), None);
    }

    #[test]
    fn matroska_codec_ids_map_to_codec_names() {
        assert_eq!(codec_name("V_MPEG4/ISO/AVC"), "h264");
        assert_eq!(codec_name("A_AAC/MPEG4/LC"), "aac");
        assert_eq!(codec_name("A_VORBIS"), "vorbis");
        assert_eq!(codec_name("S_TEXT/UTF8"), "S_TEXT/UTF8");
    }

    #[test]
    fn ebml_with_another_doc_type_is_refused() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes = [0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84, b'j', b'u', b'n', b'k'];
        file.write_all(&bytes).unwrap();
        let err = probe(&file, bytes.len() as u64).unwrap_err();
        assert!(err.to_string().contains("DocType"), "{err}");
    }

    #[test]
    fn webm_with_unknown_size_segment_and_no_cues_has_an_empty_index() {
        let mut file = tempfile::tempfile().unwrap();
        let mut bytes = vec![0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84];
        bytes.extend_from_slice(b"webm");
        bytes.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0xFF]);
        // Info: TimestampScale 1 ms, Duration 1500.0 as a 4-byte float.
        bytes.extend_from_slice(&[0x15, 0x49, 0xA9, 0x66, 0x8E, 0x2A, 0xD7, 0xB1, 0x83]);
        bytes.extend_from_slice(&[0x0F, 0x42, 0x40, 0x44, 0x89, 0x84]);
        bytes.extend_from_slice(&1500f32.to_be_bytes());
        // A Cluster of unknown size, whose contents are never read.
        bytes.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0xFF, 0xE7, 0x81, 0x00]);
        file.write_all(&bytes).unwrap();
        let info = probe(&file, bytes.len() as u64).unwrap();
        assert_eq!(info.duration_ms, Some(1500));
        assert_eq!(info.video_codec, None);
        assert!(info.time_index.is_empty());
    }

    #[test]
    fn truncated_webms_never_panic() {
        probe_truncations(VP9);
    }

    #[test]
    fn webms_with_flipped_bytes_never_panic() {
        let len = std::fs::metadata(VP9).unwrap().len();
        // The header and Tracks lie in the first few hundred bytes, the Cues near the end.
        probe_flips(VP9, 0..1024, 0x9E37_79B9_7F4A_7C15);
        probe_flips(VP9, len - 1024..len, 0xD1B5_4A32_D192_ED03);
    }
}
