//! The `tus_uploads` table: resumable uploads in progress.

use sqlx::{FromRow, SqliteExecutor};

/// One resumable upload.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
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
}

impl TusUpload {
    /// The upload with this id.
    pub(crate) async fn find(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, length, received, metadata, created_at, expires_at FROM tus_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await
    }

    /// Inserts a new upload.
    pub(crate) async fn insert(&self, db: impl SqliteExecutor<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO tus_uploads (id, length, received, metadata, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.id)
        .bind(self.length)
        .bind(self.received)
        .bind(&self.metadata)
        .bind(self.created_at)
        .bind(self.expires_at)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Records bytes received and pushes the expiry out (an active upload does not expire).
    pub(crate) async fn advance(
        db: impl SqliteExecutor<'_>,
        id: &str,
        received: i64,
        expires_at: i64,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE tus_uploads SET received = $1, expires_at = $2 WHERE id = $3")
            .bind(received)
            .bind(expires_at)
            .bind(id)
            .execute(db)
            .await?;
        Ok(())
    }

    /// Deletes an upload's row.
    pub(crate) async fn delete(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM tus_uploads WHERE id = $1").bind(id).execute(db).await?;
        Ok(())
    }

    /// Ids of uploads that expired before `now` ms (served by `tus_uploads_by_expiry`).
    pub(crate) async fn expired(db: impl SqliteExecutor<'_>, now: i64) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM tus_uploads WHERE expires_at < $1").bind(now).fetch_all(db).await
    }
}
