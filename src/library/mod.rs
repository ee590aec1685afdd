//! The media library: what files the roots hold, what is inside them, and opening them safely.

pub(crate) mod hash;
pub(crate) mod manage;
pub(crate) mod scan;
pub(crate) mod title;

use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use self::hash::{ContentHasher, HashMeter};
pub use self::scan::ScanReport;
use crate::config::Config;
use crate::db::Db;
use crate::db::files::FileRow;
use crate::db::videos::Video;

/// A media root: its label as configured (stored in the catalog) and its canonical path.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub(crate) label: String,
    pub(crate) path: PathBuf,
}

/// The label of the uploads root in the catalog; `@` keeps it apart from any configured path.
const UPLOADS: &str = "@uploads";

/// The catalog and the roots it describes.
pub(crate) struct Library {
    db: Db,
    /// The configured media roots, then the uploads root.
    roots: Vec<Root>,
    /// Where uploads wait until they are complete (same file system as the uploads root).
    tmp: PathBuf,
    /// Recently opened files by (root label, requested relative path).
    open_files: moka::sync::Cache<(String, String), OpenFile>,
    /// Every content hash the library and ingest compute is counted here.
    hashes: HashMeter,
}

/// How long an opened file is reused before its path is resolved and stat'ed again. Resolving,
/// opening and looking up the catalog cost two blocking-pool trips and a query per request; a
/// media file changes rarely, and a replaced one is picked up within this time (a handle open
/// on the old inode keeps serving the old bytes consistently meanwhile).
const OPEN_FILE_TTL: Duration = Duration::from_secs(2);

/// What is already known of a file's bytes when it reaches the catalog, so the catalog does not
/// read them again: ingest computed both on the way in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Content {
    /// The BLAKE3 content hash of the bytes as stored, 64 hex digits (the ETag).
    pub(crate) hash: String,
    /// The media type sniffed from the first bytes.
    pub(crate) mime: &'static str,
}

/// An open, catalogued file, ready for the range engine.
#[derive(Clone)]
pub(crate) struct OpenFile {
    /// The open handle.
    pub(crate) file: Arc<File>,
    /// Its catalog row (hash, media type), current with the file on disk.
    pub(crate) row: FileRow,
}

impl Library {
    /// Opens the database under the data dir and resolves the configured roots.
    pub(crate) async fn open(config: &Config) -> anyhow::Result<Self> {
        let db = Db::open(&config.data_dir).await?;
        let mut roots: Vec<Root> = config
            .media_dirs
            .iter()
            .map(|dir| Root {
                label: dir.display().to_string(),
                // A root that does not exist yet keeps its given path; the scan skips it.
                path: dir.canonicalize().unwrap_or_else(|_| dir.clone()),
            })
            .collect();
        let uploads = config.data_dir.join("library");
        let tmp = config.data_dir.join("tmp");
        for dir in [&uploads, &tmp] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        roots.push(Root { label: UPLOADS.to_owned(), path: uploads.canonicalize()? });
        let open_files = moka::sync::Cache::builder().time_to_live(OPEN_FILE_TTL).max_capacity(4096).build();
        Ok(Self { db, roots, tmp, open_files, hashes: HashMeter::default() })
    }

    /// A content hasher counted by this library.
    pub(crate) fn hasher(&self) -> ContentHasher {
        self.hashes.hasher()
    }

    /// The bytes of content hashed since the library was opened (the tests' check on ingest).
    #[cfg(test)]
    pub(crate) fn bytes_hashed(&self) -> u64 {
        self.hashes.bytes()
    }

    /// The folder for uploads in progress.
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Renames a complete upload, whose `content` ingest already knows, into the uploads root
    /// under a fresh name and catalogues it, owned by `owner`, without reading it again.
    pub(crate) async fn add_upload(
        &self,
        file: tempfile::NamedTempFile,
        content: Content,
        title: Option<&str>,
        owner: Option<&str>,
    ) -> anyhow::Result<Video> {
        let root = self.roots.iter().find(|r| r.label == UPLOADS).expect("the uploads root is always there");
        let extension = crate::media::sniff::extension(content.mime).unwrap_or("bin");
        let relative = format!("{}.{extension}", crate::id::random_id::<9>());
        let target = root.path.join(&relative);
        // Readable by the server and backups alike; the temp file was created 0600.
        std::fs::set_permissions(file.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        file.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("storing {}", target.display()))?;
        let (row, _) = scan::catalog_file(&self.db, &self.hashes, root, &relative, Some(content)).await?;
        if let Some(title) = title {
            self.db.videos().set_title(&row.id, title).await?;
        }
        if let Some(owner) = owner {
            self.db.videos().set_owner(&row.id, owner).await?;
        }
        self.db.videos().find(&row.id).await?.context("the upload was catalogued as a video")
    }

    /// The database.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Brings the catalog in line with the roots.
    pub(crate) async fn scan(&self) -> anyhow::Result<ScanReport> {
        scan::scan(&self.db, &self.hashes, &self.roots).await
    }

    /// Opens the file of a catalogued video.
    pub(crate) async fn open_video(&self, video: &Video) -> anyhow::Result<Option<OpenFile>> {
        let Some(root) = self.roots.iter().find(|r| r.label == video.file.root) else { return Ok(None) };
        self.open_in(root, &video.file.path).await
    }

    /// The bytes of a small catalogued file, `relative` inside the root labelled `root` (a
    /// caption file), resolved as safely as a stream; `None` when it is gone or over `max` bytes.
    pub(crate) async fn read_small(
        &self,
        root: &str,
        relative: &str,
        max: usize,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(root) = self.roots.iter().find(|r| r.label == root) else { return Ok(None) };
        let (root_path, candidate) = (root.path.clone(), root.path.join(relative));
        tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Vec<u8>>> {
            use std::io::Read;
            let Some(opened) = open_inside(&root_path, &candidate)? else { return Ok(None) };
            let mut bytes = Vec::new();
            opened.file.take(max as u64 + 1).read_to_end(&mut bytes)?;
            Ok((bytes.len() <= max).then_some(bytes))
        })
        .await?
    }

    /// Opens `/media/{raw}`: the first root holding that relative path. Anything that could leave
    /// a root — `..`, absolute paths, backslashes, NUL, symlinks pointing outside — is not found.
    pub(crate) async fn open_media(&self, raw: &str) -> anyhow::Result<Option<OpenFile>> {
        let Some(relative) = safe_relative(raw) else { return Ok(None) };
        for root in &self.roots {
            if let Some(open) = self.open_in(root, &relative).await? {
                return Ok(Some(open));
            }
        }
        Ok(None)
    }

    /// Opens `relative` inside `root`, re-cataloguing it when it changed since the last scan.
    async fn open_in(&self, root: &Root, relative: &str) -> anyhow::Result<Option<OpenFile>> {
        let key = (root.label.clone(), relative.to_owned());
        if let Some(open) = self.open_files.get(&key) {
            return Ok(Some(open));
        }
        let (root_path, candidate) = (root.path.clone(), root.path.join(relative));
        let opened = tokio::task::spawn_blocking(move || open_inside(&root_path, &candidate)).await??;
        let Some(Opened { file, relative, size, mtime_ns }) = opened else { return Ok(None) };
        let row = match self.db.files().find_by_path(&root.label, &relative).await? {
            Some(row) if row.size == size && row.mtime_ns == mtime_ns => row,
            // New since the scan, or changed: hash it now so the ETag is the content's.
            _ => scan::catalog_file(&self.db, &self.hashes, root, &relative, None).await?.0,
        };
        let open = OpenFile { file: Arc::new(file), row };
        self.open_files.insert(key, open.clone());
        Ok(Some(open))
    }
}

impl OpenFile {
    /// The file's modification time, for `Last-Modified`.
    pub(crate) fn modified(&self) -> SystemTime {
        let ns = u64::try_from(self.row.mtime_ns).unwrap_or(0);
        UNIX_EPOCH + Duration::from_nanos(ns)
    }
}

/// A file opened inside a root: its handle, real relative path, size and mtime (ns).
struct Opened {
    file: File,
    relative: String,
    size: i64,
    mtime_ns: i64,
}

/// Opens a regular file whose real path (symlinks resolved) is inside `root`.
fn open_inside(root: &Path, candidate: &Path) -> anyhow::Result<Option<Opened>> {
    let Ok(real) = candidate.canonicalize() else { return Ok(None) };
    let Ok(inside) = real.strip_prefix(root) else {
        tracing::warn!(path = %candidate.display(), "refused a path that resolves outside its media root");
        return Ok(None);
    };
    let Some(relative) = inside.to_str().map(|s| s.replace(std::path::MAIN_SEPARATOR, "/")) else {
        return Ok(None);
    };
    let file = File::open(&real).with_context(|| format!("opening {}", real.display()))?;
    let meta = file.metadata()?;
    if !meta.is_file() || relative.is_empty() {
        return Ok(None);
    }
    let (size, mtime_ns) = scan::stat(&meta);
    Ok(Some(Opened { file, relative, size, mtime_ns }))
}

/// A request path as a relative path of normal components, or `None` if it could escape.
fn safe_relative(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.contains(['\0', '\\']) || raw.starts_with('/') {
        return None;
    }
    let path = Path::new(raw);
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    let no_dots = raw.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    (normal && no_dots).then(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_safe() {
        assert_eq!(safe_relative("a/b.mp4").as_deref(), Some("a/b.mp4"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\..\\b", "a\0b", "..", "a/"] {
            assert_eq!(safe_relative(bad), None, "{bad:?}");
        }
    }
}
