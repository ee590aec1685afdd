//! The scanner: walks the media roots and brings the catalog in line with what is on disk.
//!
//! A file is hashed and probed only when its size or modification time changed since the last
//! scan, so restarts over a large library cost one `stat` per file.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use base64::Engine;

use super::hash::{ContentHasher, HashMeter};
use super::{Content, Root};
use crate::db::files::FileRow;
use crate::db::videos::{Metadata, VideoRecord};
use crate::db::{Db, now_secs};
use crate::media::container::{self, MediaInfo};
use crate::media::sniff;

/// What a scan found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    /// Files seen under the roots.
    pub files: usize,
    /// Files hashed and probed because they are new or changed.
    pub updated: usize,
    /// Catalog entries removed because their file is gone.
    pub removed: usize,
    /// Videos whose container could not be read (still servable).
    pub unreadable: usize,
}

/// Scans every root; missing roots are logged and skipped.
pub(crate) async fn scan(db: &Db, hashes: &HashMeter, roots: &[Root]) -> anyhow::Result<ScanReport> {
    let mut report = ScanReport::default();
    for root in roots {
        let known: HashMap<String, FileRow> =
            db.files().in_root(&root.label).await?.into_iter().map(|row| (row.path.clone(), row)).collect();
        let walk_root = root.clone();
        let on_disk = tokio::task::spawn_blocking(move || list_files(&walk_root.path)).await??;
        let mut updated = HashSet::new();
        for (relative, meta) in &on_disk {
            report.files += 1;
            let (size, mtime_ns) = meta;
            let previous = known.get(relative);
            if previous.is_some_and(|row| row.size == *size && row.mtime_ns == *mtime_ns) {
                continue;
            }
            let (row, probe) = catalog_file(db, hashes, root, relative, None).await?;
            report.updated += 1;
            updated.insert(row.id.clone());
            if probe.as_ref().is_some_and(|p| p.is_err()) {
                report.unreadable += 1;
            }
            tracing::debug!(id = %row.id, path = %relative, mime = %row.mime, "catalogued");
        }
        let present: HashSet<&str> = on_disk.iter().map(|(path, _)| path.as_str()).collect();
        for gone in known.values().filter(|row| !present.contains(row.path.as_str())) {
            db.files().delete(&gone.id).await?;
            report.removed += 1;
        }
        // After the files: a caption is attached to a video row, which must exist by now.
        crate::captions::attach_found(db, &root.label, &root.path, &updated).await?;
    }
    Ok(report)
}

/// The one entrance to the catalog: stats one file, hashes and sniffs it unless its `content` is
/// already known (an upload), probes it if it is a video, and writes its rows in one transaction.
pub(crate) async fn catalog_file(
    db: &Db,
    hashes: &HashMeter,
    root: &Root,
    relative: &str,
    content: Option<Content>,
) -> anyhow::Result<(FileRow, Option<Result<MediaInfo, String>>)> {
    let path = root.path.join(relative);
    let hasher = hashes.hasher();
    let (size, mtime_ns, Content { hash, mime }, probe) =
        tokio::task::spawn_blocking(move || inspect(&path, content, hasher)).await??;
    let row = FileRow {
        id: file_id(&root.label, relative),
        root: root.label.clone(),
        path: relative.to_owned(),
        size,
        mtime_ns,
        hash,
        mime: mime.to_owned(),
    };
    let title = super::title::from_file_name(relative);
    let metadata = Metadata::default();
    let record = probe.as_ref().map(|probe| VideoRecord {
        file_id: &row.id,
        title: &title,
        probe,
        metadata: &metadata,
    });
    db.files().catalog(&row, record.as_ref(), now_secs()).await?;
    Ok((row, probe))
}

type Inspection = (i64, i64, Content, Option<Result<MediaInfo, String>>);

/// Reads one file: size, mtime, its content (BLAKE3 and media type) unless `known`, and, for
/// videos, the container.
fn inspect(path: &Path, known: Option<Content>, mut hasher: ContentHasher) -> anyhow::Result<Inspection> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let meta = file.metadata()?;
    let (size, mtime_ns) = stat(&meta);
    let content = match known {
        Some(content) => content,
        None => {
            let mut head = [0u8; sniff::SNIFF_LEN];
            let n = read_up_to(&mut file, &mut head)?;
            let mime =
                sniff::sniff(&head[..n]).or_else(|| by_extension(path)).unwrap_or("application/octet-stream");
            hasher.update_reader(File::open(path)?)?;
            Content { hash: hasher.finish(), mime }
        }
    };
    let probe = content
        .mime
        .starts_with("video/")
        .then(|| container::probe(&file, meta.len()).map_err(|error| error.to_string()));
    Ok((size, mtime_ns, content, probe))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Size and modification time (ns) as the catalog stores them.
pub(crate) fn stat(meta: &std::fs::Metadata) -> (i64, i64) {
    let size = i64::try_from(meta.len()).unwrap_or(i64::MAX);
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    (size, mtime_ns)
}

/// Text formats have no magic bytes; their extension is all there is.
fn by_extension(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "vtt" => "text/vtt; charset=utf-8",
        "srt" => "application/x-subrip",
        "txt" | "md" => "text/plain; charset=utf-8",
        "json" => "application/json",
        _ => return None,
    })
}

/// Regular files under `root` (symlinks not followed, hidden entries skipped), '/'-separated.
fn list_files(root: &Path) -> anyhow::Result<Vec<(String, (i64, i64))>> {
    if !root.is_dir() {
        tracing::warn!(root = %root.display(), "media root is missing; skipping it");
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root)?;
        let Some(relative) = relative.to_str() else {
            tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not UTF-8");
            continue;
        };
        files.push((relative.replace(std::path::MAIN_SEPARATOR, "/"), stat(&entry.metadata()?)));
    }
    files.sort();
    Ok(files)
}

/// The short stable id of a file: 66 bits of BLAKE3 over its root and path, URL-safe.
pub(crate) fn file_id(root: &str, relative: &str) -> String {
    let digest = blake3::hash(format!("{root}\0{relative}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_bytes()[..9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_stable_and_url_safe() {
        let id = file_id("media", "sample-h264.mp4");
        assert_eq!(id.len(), 12);
        assert_eq!(id, file_id("media", "sample-h264.mp4"));
        assert_ne!(id, file_id("media", "sample-vp9.webm"));
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
