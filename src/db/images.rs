//! The `images` table: one row per uploaded image.

use sqlx::{FromRow, SqliteExecutor};

/// An uploaded image.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
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

impl ImageRow {
    /// The image with this id.
    pub(crate) async fn find(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, width, height, source, master, bytes, created_at FROM images WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await
    }

    /// Inserts a new image.
    pub(crate) async fn insert(&self, db: impl SqliteExecutor<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO images (id, width, height, source, master, bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&self.id)
        .bind(self.width)
        .bind(self.height)
        .bind(&self.source)
        .bind(&self.master)
        .bind(self.bytes)
        .bind(self.created_at)
        .execute(db)
        .await?;
        Ok(())
    }
}
