//! The `tus_uploads` table: resumable uploads in progress.

use super::Fut;

/// One resumable upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TusUpload {
    /// Random id, also the data file's name.
    pub(crate) id: String,
    /// The declared total length (`Upload-Length`).
    pub(crate) length: i64,
    /// Bytes durably received (`Upload-Offset`).
    pub(crate) received: i64,
    /// `Upload-Metadata` as the client sent it.
    pub(crate) metadata: String,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
    /// Milliseconds since the epoch; after it the upload is deleted.
    pub(crate) expires_at: i64,
    /// Who created it (signed in), the owner of the video it becomes.
    pub(crate) owner_id: Option<String>,
}

/// The `tus_uploads` repository.
pub(crate) trait Uploads {
    /// The upload with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<TusUpload>>;

    /// Inserts a new upload.
    fn insert<'a>(&'a self, upload: &'a TusUpload) -> Fut<'a, ()>;

    /// Records bytes received and pushes the expiry out (an active upload does not expire).
    fn advance<'a>(&'a self, id: &'a str, received: i64, expires_at: i64) -> Fut<'a, ()>;

    /// Deletes an upload's row.
    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, ()>;

    /// Ids of uploads that expired before `now` ms (served by `tus_uploads_by_expiry`).
    fn expired(&self, now: i64) -> Fut<'_, Vec<String>>;
}
