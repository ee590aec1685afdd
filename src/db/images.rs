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
    /// Who uploaded it; `None` for images uploaded without an account.
    pub(crate) owner: Option<ImageOwner>,
    /// The alternative text, at most [`MAX_ALT_CHARS`] characters; `None` until someone writes it.
    pub(crate) alt: Option<String>,
}

/// The account an image belongs to, as far as an answer about the image shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageOwner {
    /// The account's id.
    pub(crate) id: String,
    /// The account's display name (read with the image, so a rename shows at once).
    pub(crate) display_name: String,
}

/// The longest alternative text, in characters (the column's CHECK, migration 0015).
pub(crate) const MAX_ALT_CHARS: usize = 500;

/// The `images` repository.
pub(crate) trait Images {
    /// The image with this id, with its owner's name.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ImageRow>>;

    /// Inserts a new image (its owner by id; the name is not stored here).
    fn insert<'a>(&'a self, image: &'a ImageRow) -> Fut<'a, ()>;

    /// Replaces the image's alternative text; `false` when there is no such image.
    fn set_alt<'a>(&'a self, id: &'a str, alt: Option<&'a str>) -> Fut<'a, bool>;

    /// Deletes the image's row; `false` when there was none.
    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, bool>;
}
