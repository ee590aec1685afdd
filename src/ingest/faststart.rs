//! Lossless MP4 faststart: moving `moov` ahead of `mdat`, so playback starts before the file is fetched.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::media::container::mp4box::{self, BoxError, BoxHeader, Extent, MOOV_LIMIT, TopLevel};

/// The copy buffer: big enough that copying is bound by the disk, small enough that memory stays
/// flat for any file size.
const COPY_CHUNK: usize = 1 << 20;

/// How deep containers may nest inside `moov`; real files reach `stbl` at depth 4
/// (`trak/mdia/minf/stbl`), and the bound keeps garbage from exhausting the stack.
const DEPTH_LIMIT: usize = 8;

/// The boxes inside `moov` searched for chunk offset tables.
const CONTAINERS: [&[u8; 4]; 5] = [b"trak", b"mdia", b"minf", b"stbl", b"edts"];

/// What `make_faststart` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `moov` already comes before the media data, or there is no `mdat`; the file is untouched.
    AlreadyFaststart,
    /// The file was rewritten with its `moov` box moved to the front.
    Rewritten {
        /// The size of the moved `moov` box, header included.
        moov_size: u64,
    },
    /// The file does not open with an `ftyp` box; it is untouched.
    NotMp4,
}

/// If `path` is an MP4 whose `moov` box comes after its `mdat`, rewrites it in place so `moov`
/// comes first, shifting every chunk offset (`stco`, and `co64` entries) by the moov size; the
/// media bytes are copied unchanged. Written to a temporary file in the same folder and renamed
/// over `path`, so readers never see a half-written file and a failure leaves the original.
/// Every byte of a rewritten file is also written to `copy` as it is written (e.g. a hasher, so
/// the new file's hash costs no second read); a file left as it is writes nothing there.
///
/// Refused with [`io::ErrorKind::InvalidData`], the file untouched: a `moov` over 64 MiB, a
/// truncated or unparsable box, a fragmented file (`moof`), a chunk offset outside the media data,
/// and an `stco` entry pushed past 4 GiB (upgrading the table to `co64` would grow `moov` and
/// shift everything again; files that large are rare enough to be stored as they came).
pub(crate) fn make_faststart(path: &Path, copy: &mut impl Write) -> io::Result<Outcome> {
    let file = File::open(path)?;
    let metadata = file.metadata()?;
    let len = metadata.len();
    let (mdat, moov) = match Layout::read(&file, len)? {
        Layout::NotMp4 => return Ok(Outcome::NotMp4),
        Layout::Faststart => return Ok(Outcome::AlreadyFaststart),
        Layout::MoovLate { mdat, moov } => (mdat, moov),
    };
    let plan = Plan::new(len, mdat, &moov.extent);
    let mut moov_box = mp4box::read_whole(&file, &moov, len, MOOV_LIMIT).map_err(refused)?;
    let header = usize::try_from(moov.extent.body - moov.extent.start).map_err(|_| invalid("moov header"))?;
    let body = moov_box.get_mut(header..).ok_or_else(|| invalid("moov header"))?;
    patch_children(body, &plan, 0)?;
    plan.write(path, &file, metadata.permissions(), &moov_box, copy)?;
    Ok(Outcome::Rewritten { moov_size: moov.extent.size() })
}

/// Builds the `InvalidData` error every refusal returns.
fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cannot faststart this mp4: {}", reason.into()))
}

/// A box that cannot be read, as a refusal (or the I/O error it is).
fn refused(error: BoxError) -> io::Error {
    match error {
        BoxError::Io(error) => error,
        BoxError::Malformed(reason) => invalid(reason),
    }
}

/// What the top-level boxes say about the file.
enum Layout {
    /// No `ftyp` box first.
    NotMp4,
    /// `moov` before the first `mdat`, or no `mdat`.
    Faststart,
    /// `moov` after the first `mdat`, which starts at `mdat`.
    MoovLate { mdat: u64, moov: BoxHeader },
}

impl Layout {
    /// Walks the top-level boxes with positioned reads, checking every one is whole.
    fn read(file: &File, len: u64) -> io::Result<Self> {
        let mut head = [0; 8];
        if len < 8 {
            return Ok(Layout::NotMp4);
        }
        file.read_exact_at(&mut head, 0)?;
        if &head[4..] != b"ftyp" {
            return Ok(Layout::NotMp4);
        }
        let (mut mdat, mut moov) = (None, None);
        let mut walk = TopLevel::new(file, len);
        for header in walk.by_ref() {
            let header = header.map_err(refused)?;
            let Extent { start, end, .. } = header.extent;
            if end > len {
                let (kind, size) = (mp4box::fourcc(header.kind), header.extent.size());
                return Err(invalid(format!(
                    "box {kind} at {start} has size {size} with {} bytes left",
                    len - start
                )));
            }
            match &header.kind {
                b"moov" if mdat.is_none() => return Ok(Layout::Faststart),
                b"moov" if moov.is_some() => return Err(invalid("two moov boxes")),
                b"moov" => moov = Some(header),
                b"mdat" if mdat.is_none() => mdat = Some(start),
                // Fragments carry absolute data offsets of their own (`tfhd`), which this does not patch.
                b"moof" => return Err(invalid("a fragmented file (moof)")),
                _ => {}
            }
        }
        if walk.offset() < len {
            let (at, left) = (walk.offset(), len - walk.offset());
            return Err(invalid(format!("{left} stray bytes at {at}, too few for a box")));
        }
        match (mdat, moov) {
            (None, _) => Ok(Layout::Faststart),
            (Some(_), None) => Err(invalid("no moov box")),
            (Some(mdat), Some(moov)) => Ok(Layout::MoovLate { mdat, moov }),
        }
    }
}

/// A byte range of the old file and where it starts in the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    old: Range<u64>,
    new_start: u64,
}

/// The new layout: the pieces of the old file in their new order, the `moov` going after the first.
#[derive(Debug)]
struct Plan {
    /// Everything before the first `mdat`, then from it to `moov`, then after `moov`; `moov` can
    /// only sit after the first `mdat` here, so nothing before it moves.
    pieces: [Piece; 3],
}

impl Plan {
    /// Plans moving `moov` to just before the first `mdat`, at `mdat`, in a file of `len` bytes.
    fn new(len: u64, mdat: u64, moov: &Extent) -> Self {
        // No overflow: mdat <= moov.start < moov.end <= len, all checked against the file's length.
        let moov_size = moov.end - moov.start;
        Plan {
            pieces: [
                Piece { old: 0..mdat, new_start: 0 },
                Piece { old: mdat..moov.start, new_start: mdat + moov_size },
                // Bytes after `moov` keep their place: `moov` left before them and came back.
                Piece { old: moov.end..len, new_start: moov.end },
            ],
        }
    }

    /// The new offset of the old file's byte `old`; `None` inside `moov` or past the end.
    fn relocate(&self, old: u64) -> Option<u64> {
        let piece = self.pieces.iter().find(|p| p.old.contains(&old))?;
        Some(piece.new_start + (old - piece.old.start))
    }

    /// Writes the new file next to `path` (and to `copy`) from `from` and `moov`, syncs it and
    /// renames it over `path`.
    fn write(
        &self,
        path: &Path,
        from: &File,
        permissions: Permissions,
        moov: &[u8],
        copy: &mut impl Write,
    ) -> io::Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        // Temporary files are created owner-only; the library file keeps who may read it.
        temp.as_file().set_permissions(permissions)?;
        let mut buf = vec![0; COPY_CHUNK];
        let [head, rest @ ..] = &self.pieces;
        let mut out = Tee { file: temp.as_file_mut(), copy };
        copy_range(from, &head.old, &mut out, &mut buf)?;
        out.write_all(moov)?;
        for piece in rest {
            copy_range(from, &piece.old, &mut out, &mut buf)?;
        }
        temp.as_file().sync_all()?;
        // On any error above, dropping `temp` deletes it; so does a failed `persist`.
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The new file and the caller's copy of it, written together.
struct Tee<'a, W> {
    file: &'a mut File,
    copy: &'a mut W,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.copy.flush()
    }
}

/// Copies bytes `range` of `from` to the end of `to`, one buffer at a time.
fn copy_range(from: &File, range: &Range<u64>, to: &mut impl Write, buf: &mut [u8]) -> io::Result<()> {
    let mut at = range.start;
    while at < range.end {
        let n = usize::try_from(range.end - at).map_or(buf.len(), |left| left.min(buf.len()));
        let chunk = &mut buf[..n];
        from.read_exact_at(chunk, at)?;
        to.write_all(chunk)?;
        at += n as u64;
    }
    Ok(())
}

/// Patches the chunk offset tables among the child boxes of `body`, a container at `depth`.
fn patch_children(mut body: &mut [u8], plan: &Plan, depth: usize) -> io::Result<()> {
    // Fewer than 8 bytes cannot be a box: writers pad with a few zero bytes (ISO 14496-12 §8.1.1).
    while body.len() >= 8 {
        let (kind, header, size) = mp4box::split_header(body).map_err(refused)?;
        let (this, rest) = std::mem::take(&mut body).split_at_mut(size);
        body = rest;
        let child = &mut this[header..];
        match &kind {
            b"stco" => patch_offsets(child, false, plan)?,
            b"co64" => patch_offsets(child, true, plan)?,
            kind if CONTAINERS.contains(&kind) => {
                if depth >= DEPTH_LIMIT {
                    return Err(invalid("boxes nest too deeply in moov"));
                }
                patch_children(child, plan, depth + 1)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Relocates every entry of an `stco` table (32-bit entries) or, when `wide`, a `co64` table.
fn patch_offsets(body: &mut [u8], wide: bool, plan: &Plan) -> io::Result<()> {
    let (name, width) = if wide { ("co64", 8) } else { ("stco", 4) };
    let cut_off = || invalid(format!("{name} is cut off"));
    // A full box: version and flags, then the entry count.
    let (head, entries) = body.split_first_chunk_mut::<8>().ok_or_else(cut_off)?;
    let [.., c0, c1, c2, c3] = *head;
    let count = usize::try_from(u32::from_be_bytes([c0, c1, c2, c3])).map_err(|_| cut_off())?;
    let table = count.checked_mul(width).and_then(|n| entries.get_mut(..n)).ok_or_else(cut_off)?;
    for entry in table.chunks_exact_mut(width) {
        let old = entry.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        let new = plan
            .relocate(old)
            .ok_or_else(|| invalid(format!("{name} offset {old} lies in moov or past the end")))?;
        if !wide && new > u64::from(u32::MAX) {
            return Err(invalid(format!("stco offset {old} moves to {new}, which would need co64")));
        }
        entry.copy_from_slice(&new.to_be_bytes()[8 - width..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;

    use super::*;
    use crate::media::container::{MediaInfo, probe};

    const MOOV_AT_END: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-moov-at-end.mp4");
    const H264: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4");
    const WEBM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-vp9.webm");

    /// The moov-at-end sample's `moov`: its start and size.
    const MOOV_START: usize = 192_026;
    const MOOV_SIZE: u64 = 16_679;

    /// Copies the file at `source` into `dir`, under its own name.
    fn copy_into(dir: &Path, source: &str) -> PathBuf {
        let to = dir.join(Path::new(source).file_name().unwrap());
        std::fs::copy(source, &to).unwrap();
        to
    }

    /// The names of the files in `dir`.
    fn listing(dir: &Path) -> Vec<OsString> {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    }

    /// The child boxes of `body` as (fourcc, start, end); 32-bit sizes only, as the samples use.
    fn boxes(body: &[u8]) -> Vec<([u8; 4], usize, usize)> {
        let mut found = Vec::new();
        let mut at = 0;
        while at + 8 <= body.len() {
            let size = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && at + size <= body.len(), "box at {at} has size {size}");
            found.push((body[at + 4..at + 8].try_into().unwrap(), at, at + size));
            at += size;
        }
        found
    }

    /// The top-level box kinds in order.
    fn kinds(bytes: &[u8]) -> Vec<String> {
        boxes(bytes).iter().map(|(k, _, _)| String::from_utf8_lossy(k).into_owned()).collect()
    }

    /// The body of the first child of `body` of kind `kind`.
    fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
        boxes(body).into_iter().find(|(k, _, _)| k == kind).map(|(_, start, end)| &body[start + 8..end])
    }

    /// Each track's chunk offsets, read from `stco` or `co64`.
    fn chunk_offsets(bytes: &[u8]) -> Vec<Vec<u64>> {
        let moov = child(bytes, b"moov").unwrap();
        let traks = boxes(moov).into_iter().filter(|(k, _, _)| k == b"trak");
        traks
            .map(|(_, start, end)| {
                let mut stbl = &moov[start + 8..end];
                for kind in [b"mdia", b"minf", b"stbl"] {
                    stbl = child(stbl, kind).unwrap();
                }
                let (table, width) = match child(stbl, b"stco") {
                    Some(stco) => (stco, 4),
                    None => (child(stbl, b"co64").unwrap(), 8),
                };
                let count = u32::from_be_bytes(table[4..8].try_into().unwrap()) as usize;
                table[8..8 + count * width]
                    .chunks_exact(width)
                    .map(|e| e.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)))
                    .collect()
            })
            .collect()
    }

    fn probe_path(path: &Path) -> MediaInfo {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        probe(&file, len).unwrap()
    }

    /// Rewrites a copy of the moov-at-end sample: (original bytes, rewritten bytes, the folder).
    fn rewrite_sample() -> (Vec<u8>, Vec<u8>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), MOOV_AT_END);
        let mut copy = Vec::new();
        assert_eq!(make_faststart(&path, &mut copy).unwrap(), Outcome::Rewritten { moov_size: MOOV_SIZE });
        let after = std::fs::read(&path).unwrap();
        assert!(copy == after, "the copy is the rewritten file, byte for byte");
        (std::fs::read(MOOV_AT_END).unwrap(), after, dir)
    }

    /// Runs `make_faststart` on `bytes` in a fresh folder; on an error, asserts the file is
    /// byte-identical and alone in its folder.
    fn attempt(bytes: &[u8]) -> io::Result<Outcome> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video.mp4");
        std::fs::write(&path, bytes).unwrap();
        let outcome = make_faststart(&path, &mut io::sink());
        assert_eq!(listing(dir.path()), [OsString::from("video.mp4")], "a temporary file remains");
        let after = std::fs::read(&path).unwrap();
        match outcome {
            Ok(Outcome::Rewritten { .. }) => assert_eq!(after.len(), bytes.len()),
            _ => assert!(after == bytes, "the file changed on {outcome:?}"),
        }
        outcome
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(8 + body.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// A full box table: version and flags 0, the entry count, then the entries.
    fn table(kind: &[u8; 4], entries: &[u64]) -> Vec<u8> {
        let mut body = vec![0; 4];
        body.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        for &e in entries {
            match kind {
                b"co64" => body.extend_from_slice(&e.to_be_bytes()),
                _ => body.extend_from_slice(&u32::try_from(e).unwrap().to_be_bytes()),
            }
        }
        boxed(kind, &body)
    }

    /// A `moov` with one track per table, each `trak/mdia/minf/stbl/<table>`.
    fn moov_with(tables: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for table in tables {
            let stbl = boxed(b"stbl", table);
            body.extend(boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl))));
        }
        boxed(b"moov", &body)
    }

    #[test]
    fn moov_at_end_sample_becomes_ftyp_free_moov_mdat_with_the_same_media_bytes() {
        let (before, after, _dir) = rewrite_sample();
        assert_eq!(kinds(&before), ["ftyp", "free", "mdat", "moov"]);
        assert_eq!(kinds(&after), ["ftyp", "free", "moov", "mdat"]);
        assert_eq!(after.len(), before.len());
        assert_eq!(after[..40], before[..40], "ftyp and free are copied as they were");
        let mdat = 40 + MOOV_SIZE as usize;
        assert_eq!(after[mdat..], before[40..MOOV_START], "the mdat box, header and payload");
    }

    #[test]
    fn every_chunk_offset_points_at_the_same_bytes_after_rewrite() {
        let (before, after, _dir) = rewrite_sample();
        let (old, new) = (chunk_offsets(&before), chunk_offsets(&after));
        assert_eq!(old.len(), 2, "a video and an audio track");
        assert_eq!(
            old.iter().map(Vec::len).collect::<Vec<_>>(),
            new.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for (old, new) in old.iter().flatten().zip(new.iter().flatten()) {
            assert_eq!(*new, old + MOOV_SIZE);
            let (old, new) = (*old as usize, *new as usize);
            // Up to 64 bytes, not past the old mdat's end where the old moov began.
            let n = 64.min(MOOV_START - old);
            assert_eq!(before[old..old + n], after[new..new + n], "chunk at {old}");
        }
    }

    #[test]
    fn prober_sees_faststart_with_the_same_media_and_an_index_inside_the_new_mdat() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), MOOV_AT_END);
        let before = probe_path(&path);
        make_faststart(&path, &mut io::sink()).unwrap();
        let after = probe_path(&path);
        assert!(!before.faststart);
        assert!(after.faststart);
        assert_eq!(
            (after.container, after.duration_ms, after.width, after.height),
            (before.container, before.duration_ms, before.width, before.height)
        );
        assert_eq!((&after.video_codec, &after.audio_codec), (&before.video_codec, &before.audio_codec));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), std::fs::metadata(MOOV_AT_END).unwrap().len());

        let mdat = (40 + MOOV_SIZE + 8)..std::fs::metadata(&path).unwrap().len();
        let (old, new) = (before.time_index.points(), after.time_index.points());
        assert!(!new.is_empty());
        assert_eq!(old.len(), new.len());
        for (old, new) in old.iter().zip(new) {
            assert!(mdat.contains(&new.byte), "{new:?} outside the new mdat {mdat:?}");
            assert_eq!((new.byte, new.ms), (old.byte + MOOV_SIZE, old.ms));
        }
    }

    #[test]
    fn already_faststart_file_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), H264);
        assert_eq!(make_faststart(&path, &mut io::sink()).unwrap(), Outcome::AlreadyFaststart);
        assert!(std::fs::read(&path).unwrap() == std::fs::read(H264).unwrap());
        assert_eq!(listing(dir.path()).len(), 1);
    }

    #[test]
    fn webm_is_not_mp4_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), WEBM);
        assert_eq!(make_faststart(&path, &mut io::sink()).unwrap(), Outcome::NotMp4);
        assert!(std::fs::read(&path).unwrap() == std::fs::read(WEBM).unwrap());
        assert_eq!(attempt(b"").unwrap(), Outcome::NotMp4);
        assert_eq!(attempt(b"not a video at all").unwrap(), Outcome::NotMp4);
    }

    #[test]
    fn rewritten_file_keeps_the_original_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), MOOV_AT_END);
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        make_faststart(&path, &mut io::sink()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn truncated_copies_are_refused_and_left_alone_unless_no_box_is_cut() {
        let bytes = std::fs::read(MOOV_AT_END).unwrap();
        let total = bytes.len();
        // ftyp ends at 32, free at 40, mdat at 192 026, moov at the end.
        let cases: [(usize, Option<Outcome>); 15] = [
            (0, Some(Outcome::NotMp4)),
            (7, Some(Outcome::NotMp4)),
            (8, None),
            (31, None),
            (32, Some(Outcome::AlreadyFaststart)),
            (39, None),
            (40, Some(Outcome::AlreadyFaststart)),
            (47, None),
            (100_000, None),
            (MOOV_START, None),
            (MOOV_START + 7, None),
            (MOOV_START + 8, None),
            (MOOV_START + 2000, None),
            (total - 100, None),
            (total - 1, None),
        ];
        for (len, expected) in cases {
            let outcome = attempt(&bytes[..len]);
            match expected {
                Some(expected) => assert_eq!(outcome.unwrap(), expected, "cut at {len}"),
                None => assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::InvalidData, "cut at {len}"),
            }
        }
    }

    #[test]
    fn byte_flips_inside_moov_never_panic_and_errors_leave_the_file_alone() {
        let bytes = std::fs::read(MOOV_AT_END).unwrap();
        let moov = MOOV_START..bytes.len();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut refused, mut rewritten) = (0, 0);
        for round in 0..200 {
            let mut flipped = bytes.clone();
            for _ in 0..1 + round % 3 {
                let at = moov.start + (next() % moov.len() as u64) as usize;
                flipped[at] ^= next().to_le_bytes()[0] | 1;
            }
            match attempt(&flipped) {
                Ok(_) => rewritten += 1,
                Err(_) => refused += 1,
            }
        }
        // Most flips land in sample tables other than stco and rewrite fine; some break the boxes.
        assert!(refused > 0 && rewritten > 0, "{refused} refused, {rewritten} rewritten");
    }

    #[test]
    fn moov_between_two_mdats_shifts_only_the_chunks_before_it() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0isom");
        let mdat_a = boxed(b"mdat", b"AAAAaaaa");
        let mdat_b = boxed(b"mdat", b"BBBBbbbb");
        let a = (ftyp.len() + 8) as u64;
        let build = |b: u64| moov_with(&[table(b"stco", &[a, a + 4, b]), table(b"co64", &[b + 4, a + 1])]);
        let moov_size = build(0).len() as u64;
        let b = a + 8 + moov_size + 8;
        let file = [ftyp.clone(), mdat_a.clone(), build(b), mdat_b.clone()].concat();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.mp4");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(make_faststart(&path, &mut io::sink()).unwrap(), Outcome::Rewritten { moov_size });
        let after = std::fs::read(&path).unwrap();
        assert_eq!(kinds(&after), ["ftyp", "moov", "mdat", "mdat"]);
        let new_a = a + moov_size;
        assert_eq!(chunk_offsets(&after), [vec![new_a, new_a + 4, b], vec![b + 4, new_a + 1]]);
        for (old, new) in chunk_offsets(&file).iter().flatten().zip(chunk_offsets(&after).iter().flatten()) {
            assert_eq!(file[*old as usize], after[*new as usize]);
        }
        let moved = moov_with(&[table(b"stco", &[new_a, new_a + 4, b]), table(b"co64", &[b + 4, new_a + 1])]);
        assert_eq!(after, [ftyp, moved, mdat_a, mdat_b].concat());
    }

    #[test]
    fn stco_entry_pushed_past_4_gib_is_refused_as_needing_co64() {
        // A 4 GiB file is too big to write in a test: patch a moov in memory for one instead.
        let moov = Extent { start: 0xFFFF_F000, body: 0xFFFF_F008, end: 0xFFFF_F000 + 0x2000 };
        let plan = Plan::new(moov.end + 100, 40, &moov);
        let mut stco = moov_with(&[table(b"stco", &[48, 0xFFFF_E000])]);
        let err = patch_children(&mut stco[8..], &plan, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("would need co64"), "{err}");

        let mut co64 = moov_with(&[table(b"co64", &[48, 0xFFFF_E000, moov.end + 10])]);
        patch_children(&mut co64[8..], &plan, 0).unwrap();
        assert_eq!(chunk_offsets(&co64), [vec![48 + 0x2000, 0x1_0000_0000, moov.end + 10]]);
    }

    #[test]
    fn layouts_it_cannot_rewrite_are_refused_and_left_alone() {
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0isom");
        let mdat = boxed(b"mdat", b"media");
        let into_mdat = (ftyp.len() + 8) as u64;
        let moov = moov_with(&[table(b"stco", &[into_mdat])]);
        let into_moov = (ftyp.len() + mdat.len() + 20) as u64;
        let mut deep = boxed(b"stbl", &table(b"stco", &[into_mdat]));
        for _ in 0..20 {
            deep = boxed(b"trak", &deep);
        }
        let cases = [
            ("no moov", [&ftyp[..], &mdat].concat()),
            ("two moovs", [&ftyp[..], &mdat, &moov, &moov].concat()),
            ("fragments", [&ftyp[..], &mdat, &moov, &boxed(b"moof", b"")].concat()),
            ("stray bytes", [&ftyp[..], &mdat, &moov, b"\0\0\0"].concat()),
            ("offset in moov", [&ftyp[..], &mdat, &moov_with(&[table(b"stco", &[into_moov])])].concat()),
            ("offset past end", [&ftyp[..], &mdat, &moov_with(&[table(b"co64", &[u64::MAX])])].concat()),
            (
                "short table",
                [&ftyp[..], &mdat, &boxed(b"moov", &boxed(b"stco", &[0, 0, 0, 0, 0, 0, 0, 9]))].concat(),
            ),
            ("deep nesting", [&ftyp[..], &mdat, &boxed(b"moov", &deep)].concat()),
            (
                "child overruns",
                [&ftyp[..], &mdat, &boxed(b"moov", &[0, 0, 0, 99, b't', b'r', b'a', b'k'])].concat(),
            ),
        ];
        for (name, file) in cases {
            let err = attempt(&file).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{name}: {err}");
        }
        // The same shapes done right do rewrite.
        assert!(matches!(attempt(&[&ftyp[..], &mdat, &moov].concat()), Ok(Outcome::Rewritten { .. })));
    }

    #[test]
    fn oversized_moov_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.mp4");
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0isom");
        let mdat = boxed(b"mdat", b"media");
        let moov_size = (MOOV_LIMIT + 8) as u32;
        let head = [&ftyp[..], &mdat, &moov_size.to_be_bytes(), b"moov"].concat();
        std::fs::write(&path, &head).unwrap();
        // Sparse: the file claims 64 MiB of moov without writing it.
        let len = (ftyp.len() + mdat.len()) as u64 + u64::from(moov_size);
        File::options().write(true).open(&path).unwrap().set_len(len).unwrap();
        let err = make_faststart(&path, &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");
        assert_eq!(listing(dir.path()).len(), 1);
    }

    #[test]
    fn rewritten_sample_has_the_same_packets_under_ffprobe_when_installed() {
        let packets = |path: &Path| {
            let output = std::process::Command::new("ffprobe")
                .args(["-v", "error", "-show_packets", "-show_data_hash", "md5", "-of", "compact"])
                .args(["-show_entries", "packet=stream_index,pts,dts,duration,size,flags,data_hash"])
                .arg(path)
                .output()
                .ok()?;
            assert!(output.status.success() && output.stderr.is_empty(), "{output:?}");
            Some(String::from_utf8(output.stdout).unwrap())
        };
        let dir = tempfile::tempdir().unwrap();
        let path = copy_into(dir.path(), MOOV_AT_END);
        // Skipped where ffprobe is not installed, as in CI.
        let Some(before) = packets(&path) else {
            return;
        };
        make_faststart(&path, &mut io::sink()).unwrap();
        let after = packets(&path).unwrap();
        assert!(before.lines().count() > 1000, "{} packets", before.lines().count());
        assert_eq!(before, after);
    }
}
