//! The `files` table: every file under the media roots, with its content hash and media type.

use super::Fut;
use super::videos::VideoRecord;

/// One catalogued file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRow {
    /// Short stable id.
    pub(crate) id: String,
    /// The media root as configured.
    pub(crate) root: String,
    /// The '/'-separated path inside the root.
    pub(crate) path: String,
    /// Length in bytes.
    pub(crate) size: i64,
    /// Modification time, nanoseconds since the epoch.
    pub(crate) mtime_ns: i64,
    /// BLAKE3 of the content, hex.
    pub(crate) hash: String,
    /// Media type sniffed from the content.
    pub(crate) mime: String,
}

/// The `files` repository.
pub(crate) trait Files {
    /// The file at `path` inside `root` (served by the `UNIQUE (root, path)` index).
    fn find_by_path<'a>(&'a self, root: &'a str, path: &'a str) -> Fut<'a, Option<FileRow>>;

    /// A file with this content catalogued as a video of `owner` (`None`: of nobody), if the
    /// library has one (served by `files_by_hash`).
    fn find_video_by_hash<'a>(&'a self, hash: &'a str, owner: Option<&'a str>) -> Fut<'a, Option<FileRow>>;

    /// Images in the catalog, by path, for the library page.
    fn images(&self, limit: u32) -> Fut<'_, Vec<FileRow>>;

    /// Every file of a root, for the scanner's change detection.
    fn in_root<'a>(&'a self, root: &'a str) -> Fut<'a, Vec<FileRow>>;

    /// Writes a file's row (inserted, or updated when its content changed) and, for a video,
    /// what the scanner learnt about it, in one transaction. An existing video keeps its view
    /// count and first-seen time.
    fn catalog<'a>(&'a self, file: &'a FileRow, video: Option<&'a VideoRecord<'a>>, now: i64) -> Fut<'a, ()>;

    /// Deletes a file that left the root (its video row goes with it: `ON DELETE CASCADE`).
    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, ()>;
}
