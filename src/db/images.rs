//! The `images` table: one row per uploaded image.

use super::Fut;

/// An uploaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRow {
    /// Random short id.
    pub(crate) id: String,
    /// Width of the master, pixels (orientation applied).
    pub(crate) width: i64,
    /// Height of the master, pixels.
    pub(crate) height: i64,
    /// The uploaded format: `jpeg`, `png`, `webp` or `gif`.
    pub(crate) source: String,
    /// The master's extension on disk: `jpg` or `png`.
    pub(crate) master: String,
    /// The uploaded size in bytes.
    pub(crate) bytes: i64,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
}

/// The `images` repository.
pub(crate) trait Images {
    /// The image with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ImageRow>>;

    /// Inserts a new image.
    fn insert<'a>(&'a self, image: &'a ImageRow) -> Fut<'a, ()>;
}
