//! The `files` table: every file under the media roots, with its content hash and media type.

use sqlx::{FromRow, SqliteExecutor};

/// One catalogued file.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
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

impl FileRow {
    /// The file at `path` inside `root` (served by the `UNIQUE (root, path)` index).
    pub(crate) async fn find_by_path(
        db: impl SqliteExecutor<'_>,
        root: &str,
        path: &str,
    ) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, root, path, size, mtime_ns, hash, mime FROM files WHERE root = $1 AND path = $2",
        )
        .bind(root)
        .bind(path)
        .fetch_optional(db)
        .await
    }

    /// A file with this content, if the library has one (served by `files_by_hash`).
    pub(crate) async fn find_by_hash(db: impl SqliteExecutor<'_>, hash: &str) -> sqlx::Result<Option<Self>> {
        sqlx::query_as("SELECT id, root, path, size, mtime_ns, hash, mime FROM files WHERE hash = $1 LIMIT 1")
            .bind(hash)
            .fetch_optional(db)
            .await
    }

    /// Images in the catalog, by path, for the library page.
    pub(crate) async fn images(db: impl SqliteExecutor<'_>, limit: u32) -> sqlx::Result<Vec<Self>> {
        sqlx::query_as(
            "SELECT id, root, path, size, mtime_ns, hash, mime FROM files
             WHERE mime LIKE 'image/%' ORDER BY path LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
    }

    /// Every file of a root, for the scanner's change detection.
    pub(crate) async fn in_root(db: impl SqliteExecutor<'_>, root: &str) -> sqlx::Result<Vec<Self>> {
        sqlx::query_as("SELECT id, root, path, size, mtime_ns, hash, mime FROM files WHERE root = $1")
            .bind(root)
            .fetch_all(db)
            .await
    }

    /// Inserts the row, or updates it when the id exists (a file whose content changed).
    pub(crate) async fn upsert(&self, db: impl SqliteExecutor<'_>, scanned_at: i64) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO files (id, root, path, size, mtime_ns, hash, mime, scanned_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
                 size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash,
                 mime = excluded.mime, scanned_at = excluded.scanned_at",
        )
        .bind(&self.id)
        .bind(&self.root)
        .bind(&self.path)
        .bind(self.size)
        .bind(self.mtime_ns)
        .bind(&self.hash)
        .bind(&self.mime)
        .bind(scanned_at)
        .execute(db)
        .await?;
        Ok(())
    }

    /// Deletes a file that left the root (its video row goes with it: `ON DELETE CASCADE`).
    pub(crate) async fn delete(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(db).await?;
        Ok(())
    }
}
