//! MP4 boxes (ISO 14496-12 §4.2): the one box reader shared by the prober and by faststart, for
//! top-level boxes read from a file and for child boxes inside a body held in memory.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::WALK_LIMIT;

/// The largest `moov` box read into memory, by the prober and by faststart alike; a two-hour
/// film's sample tables take a few MiB.
pub(crate) const MOOV_LIMIT: u64 = 64 << 20;

/// A box's place in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Where the box header starts.
    pub(crate) start: u64,
    /// Where the body starts, after the header.
    pub(crate) body: u64,
    /// Where the box ends; past the file's length when the file is truncated (callers decide
    /// whether that is acceptable).
    pub(crate) end: u64,
}

impl Extent {
    /// The box's size, header included.
    pub(crate) fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// A top-level box: its four-character kind and its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    /// The fourcc, e.g. `moov`.
    pub(crate) kind: [u8; 4],
    /// Where it lies.
    pub(crate) extent: Extent,
}

/// Why boxes could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BoxError {
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The boxes are broken, truncated or beyond the limits.
    #[error("{0}")]
    Malformed(String),
}

/// A fourcc for messages.
pub(crate) fn fourcc(kind: [u8; 4]) -> String {
    String::from_utf8_lossy(&kind).into_owned()
}

/// Parses a box header from `head`, at least its first 8 bytes, for a box that may run to `left`
/// bytes (what a size of 0 means): its kind, header length and size, unchecked against `left`.
fn parse(head: &[u8], left: u64) -> Result<([u8; 4], u64, u64), BoxError> {
    let (&[s0, s1, s2, s3, k0, k1, k2, k3], after) = head
        .split_first_chunk::<8>()
        .ok_or_else(|| BoxError::Malformed(format!("{} stray bytes, too few for a box", head.len())))?;
    let kind = [k0, k1, k2, k3];
    let (size, header) = match u32::from_be_bytes([s0, s1, s2, s3]) {
        0 => (left, 8),
        1 => {
            let large = after
                .first_chunk::<8>()
                .ok_or_else(|| BoxError::Malformed("a 64-bit box size is cut off".into()))?;
            (u64::from_be_bytes(*large), 16)
        }
        size => (u64::from(size), 8),
    };
    if size < header {
        return Err(BoxError::Malformed(format!(
            "box {} has size {size}, less than its header",
            fourcc(kind)
        )));
    }
    Ok((kind, header, size))
}

/// Reads the header of the box at `at` in a file of `len` bytes; `None` once fewer than 8 bytes
/// remain. The box may claim to run past `len` (see [`Extent::end`]).
pub(crate) fn read_header(file: &File, at: u64, len: u64) -> Result<Option<BoxHeader>, BoxError> {
    let left = len.saturating_sub(at);
    if left < 8 {
        return Ok(None);
    }
    let mut head = [0; 16];
    let read = if left >= 16 { 16 } else { 8 };
    file.read_exact_at(&mut head[..read], at)?;
    let (kind, header, size) = parse(&head[..read], left)?;
    let end = at
        .checked_add(size)
        .ok_or_else(|| BoxError::Malformed(format!("box {} at {at} has size {size}", fourcc(kind))))?;
    Ok(Some(BoxHeader { kind, extent: Extent { start: at, body: at + header, end } }))
}

/// Reads a whole box, header included, refusing one over `limit` bytes or past `len`.
pub(crate) fn read_whole(file: &File, header: &BoxHeader, len: u64, limit: u64) -> Result<Vec<u8>, BoxError> {
    let (kind, size) = (fourcc(header.kind), header.extent.size());
    if size > limit {
        return Err(BoxError::Malformed(format!("a {size}-byte {kind} is over the {limit}-byte limit")));
    }
    if header.extent.end > len {
        return Err(BoxError::Malformed(format!("{kind} runs past the end of the file")));
    }
    let mut buf = vec![0; usize::try_from(size).map_err(|_| BoxError::Malformed(format!("{kind} size")))?];
    file.read_exact_at(&mut buf, header.extent.start)?;
    Ok(buf)
}

/// The top-level boxes of a file in order, read with positioned reads; at most [`WALK_LIMIT`]
/// of them, then an error (real files have a handful, and this bounds a file of tiny ones).
pub(crate) struct TopLevel<'a> {
    file: &'a File,
    len: u64,
    at: u64,
    walked: usize,
    done: bool,
}

impl<'a> TopLevel<'a> {
    /// Walks the boxes of `file`, `len` bytes long, from its start.
    pub(crate) fn new(file: &'a File, len: u64) -> Self {
        TopLevel { file, len, at: 0, walked: 0, done: false }
    }

    /// Where the next box would start: the end of the last one read.
    pub(crate) fn offset(&self) -> u64 {
        self.at
    }
}

impl Iterator for TopLevel<'_> {
    type Item = Result<BoxHeader, BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.walked == WALK_LIMIT {
            self.done = true;
            return Some(Err(BoxError::Malformed(format!("more than {WALK_LIMIT} top-level boxes"))));
        }
        match read_header(self.file, self.at, self.len) {
            Ok(Some(header)) => {
                self.walked += 1;
                self.at = header.extent.end;
                Some(Ok(header))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// Follows the top-level boxes of a file as its bytes stream in, to tell from its first boxes
/// whether its index (`moov`) comes after the media data (`mdat`), so faststart will rewrite it.
#[derive(Debug, Default)]
pub(crate) struct StreamWalk {
    /// Bytes fed so far.
    fed: u64,
    /// Where the next box header starts.
    next: u64,
    /// The bytes of that header gathered so far (at most 16).
    head: Vec<u8>,
    /// Boxes passed.
    walked: usize,
    /// Once known: whether the file opens with `ftyp` and has `mdat` before any `moov`.
    moov_late: Option<bool>,
}

impl StreamWalk {
    /// Follows the next bytes of the stream.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let chunk_start = self.fed;
        self.fed += chunk.len() as u64;
        while self.moov_late.is_none() && self.next + (self.head.len() as u64) < self.fed {
            // Header bytes already gathered came from earlier chunks, so this is inside `chunk`.
            let from =
                usize::try_from(self.next + self.head.len() as u64 - chunk_start).unwrap_or(usize::MAX);
            let take = (16 - self.head.len()).min(chunk.len().saturating_sub(from));
            self.head.extend_from_slice(&chunk[from..from + take]);
            let large = self.head.starts_with(&[0, 0, 0, 1]);
            if self.head.len() < 8 || (large && self.head.len() < 16) {
                return;
            }
            let to_end = self.head.starts_with(&[0, 0, 0, 0]);
            self.moov_late = match parse(&self.head, u64::MAX) {
                Err(_) => Some(false),
                Ok((kind, ..)) if self.walked == 0 && &kind != b"ftyp" => Some(false),
                Ok((kind, ..)) if &kind == b"moov" => Some(false),
                Ok((kind, ..)) if &kind == b"mdat" => Some(true),
                // A size of 0 runs to the end: no `moov` or `mdat` follows.
                Ok(_) if to_end => Some(false),
                Ok((_, _, size)) => {
                    self.walked += 1;
                    self.next = self.next.saturating_add(size);
                    self.head.clear();
                    (self.walked >= WALK_LIMIT).then_some(false)
                }
            };
        }
    }

    /// `Some(true)` once the stream is known to be an MP4 whose `mdat` comes before `moov`,
    /// `Some(false)` once it is known not to be, `None` while its first boxes have not all arrived.
    pub(crate) fn moov_late(&self) -> Option<bool> {
        self.moov_late
    }
}

/// Splits the box opening `buf`, a body held in memory that must contain all of it: its kind,
/// header length and size.
pub(crate) fn split_header(buf: &[u8]) -> Result<([u8; 4], usize, usize), BoxError> {
    let head = &buf[..buf.len().min(16)];
    let (kind, header, size) = parse(head, buf.len() as u64)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= buf.len())
        .ok_or_else(|| BoxError::Malformed(format!("box {} overruns its parent", fourcc(kind))))?;
    Ok((kind, header as usize, size))
}

/// The child boxes of a box body held in memory, as (kind, body); a broken one ends the walk
/// with its error.
pub(crate) struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<([u8; 4], &'a [u8]), BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Fewer than 8 bytes cannot be a box: writers pad with a few zero bytes (§8.1.1).
        if self.rest.len() < 8 {
            return None;
        }
        match split_header(self.rest) {
            Ok((kind, header, size)) => {
                let (this, rest) = self.rest.split_at(size);
                self.rest = rest;
                Some(Ok((kind, &this[header..])))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl<'a> Boxes<'a> {
    /// The children of `body`.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Boxes { rest: body }
    }

    /// The body of the first child of kind `kind`.
    pub(crate) fn find(body: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, BoxError> {
        for child in Boxes::new(body) {
            let (k, body) = child?;
            if &k == kind {
                return Ok(Some(body));
            }
        }
        Ok(None)
    }

    /// The body at the end of a path of nested kinds.
    pub(crate) fn find_path(mut body: &'a [u8], path: &[&[u8; 4]]) -> Result<Option<&'a [u8]>, BoxError> {
        for kind in path {
            match Boxes::find(body, kind)? {
                Some(child) => body = child,
                None => return Ok(None),
            }
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(8 + body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn headers_of_every_size_form_parse_alike_in_files_and_in_memory() {
        let large = [&1u32.to_be_bytes()[..], b"mdat", &20u64.to_be_bytes(), b"data"].concat();
        let to_end = [&0u32.to_be_bytes()[..], b"free", b"rest of it"].concat();
        let bytes = [boxed(b"ftyp", b"isom"), large, to_end].concat();
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&bytes, 0).unwrap();
        let walked: Vec<_> = TopLevel::new(&file, bytes.len() as u64).map(Result::unwrap).collect();
        let kinds: Vec<_> =
            walked.iter().map(|h| (fourcc(h.kind), h.extent.start, h.extent.body, h.extent.end)).collect();
        assert_eq!(
            kinds,
            [("ftyp".into(), 0, 8, 12), ("mdat".into(), 12, 28, 32), ("free".into(), 32, 40, 50)]
        );

        let children: Vec<_> = Boxes::new(&bytes).map(Result::unwrap).collect();
        assert_eq!(children, [(*b"ftyp", &b"isom"[..]), (*b"mdat", b"data"), (*b"free", b"rest of it")]);
    }

    #[test]
    fn a_stream_shows_a_late_moov_from_its_first_boxes_whatever_its_chunking() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0isom");
        let mdat = boxed(b"mdat", &[7; 100]);
        let moov = boxed(b"moov", &[1; 50]);
        let large_free = [&1u32.to_be_bytes()[..], b"free", &20u64.to_be_bytes(), b"pad!"].concat();
        let cases = [
            ([&ftyp[..], &large_free, &mdat, &moov].concat(), Some(true)),
            ([&ftyp[..], &moov, &mdat].concat(), Some(false)),
            ([&mdat[..], &moov].concat(), Some(false)),
            (ftyp.clone(), None),
        ];
        for (bytes, expected) in cases {
            for size in [1, 3, 8, 13, 1000] {
                let mut walk = StreamWalk::default();
                bytes.chunks(size).for_each(|chunk| walk.feed(chunk));
                assert_eq!(walk.moov_late(), expected, "chunks of {size}");
            }
        }
    }

    #[test]
    fn broken_headers_are_errors_and_truncated_boxes_are_left_to_the_caller() {
        let file = tempfile::tempfile().unwrap();
        let bytes = [&4u32.to_be_bytes()[..], b"moov"].concat();
        file.write_all_at(&bytes, 0).unwrap();
        assert!(matches!(read_header(&file, 0, 8), Err(BoxError::Malformed(_))));
        assert!(read_header(&file, 1, 8).unwrap().is_none(), "fewer than 8 bytes left");
        assert!(split_header(&bytes).is_err());
        assert!(split_header(&boxed(b"trak", b"body")[..10]).unwrap_err().to_string().contains("overruns"));

        let cut = boxed(b"moov", &[0; 100]);
        file.write_all_at(&cut[..20], 0).unwrap();
        let header = read_header(&file, 0, 20).unwrap().unwrap();
        assert_eq!(header.extent.end, 108, "a truncated box says how long it claims to be");
        assert!(read_whole(&file, &header, 20, MOOV_LIMIT).unwrap_err().to_string().contains("past the end"));
        assert!(read_whole(&file, &header, 108, 50).unwrap_err().to_string().contains("limit"));
    }
}
