//! The `captions` table: the caption tracks of each video, found in a media root or uploaded.

use super::Fut;

/// A caption track of a video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptionRow {
    /// Random short id (its URL is `/captions/{id}.vtt`).
    pub(crate) id: String,
    /// The video it belongs to.
    pub(crate) video_id: String,
    /// A canonical BCP 47 tag (`captions::lang`).
    pub(crate) lang: String,
    /// What the player's menu shows.
    pub(crate) label: String,
    /// `vtt` or `srt`.
    pub(crate) format: String,
    /// The caption file when found in a media root; `None` for an upload, whose text is in the
    /// row (read with [`Captions::content`]).
    pub(crate) file: Option<CaptionFile>,
    /// Blocks of the text that are not cues.
    pub(crate) warnings: i64,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
}

/// The catalogued file a caption was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptionFile {
    /// Its `files` row.
    pub(crate) id: String,
    /// The media root as configured.
    pub(crate) root: String,
    /// The '/'-separated path inside the root.
    pub(crate) path: String,
}

/// The `captions` repository.
pub(crate) trait Captions {
    /// A video's captions by language, then age (served by `captions_by_video`).
    fn by_video<'a>(&'a self, video_id: &'a str) -> Fut<'a, Vec<CaptionRow>>;

    /// The caption with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<CaptionRow>>;

    /// The text of an uploaded caption; `None` for a missing one or one found in a media root.
    fn content<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Vec<u8>>>;

    /// The ids of the caption files of `root` attached to a video, so a scan reads only new ones.
    fn attached_in_root<'a>(&'a self, root: &'a str) -> Fut<'a, Vec<String>>;

    /// Attaches a caption file of a media root (`caption.file` set; its root and path are not written): inserted, or updated in
    /// place (id kept) when the file changed.
    fn attach_file<'a>(&'a self, caption: &'a CaptionRow) -> Fut<'a, ()>;

    /// Inserts an uploaded caption with its text.
    fn insert_upload<'a>(&'a self, caption: &'a CaptionRow, content: &'a [u8]) -> Fut<'a, ()>;

    /// Deletes a caption; `false` when there was none.
    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, bool>;
}
