//! The `files` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::files::{FileRow, Files};
use crate::db::videos::VideoRecord;

impl Files for Sqlite {
    fn find_by_path<'a>(&'a self, root: &'a str, path: &'a str) -> Fut<'a, Option<FileRow>> {
        Box::pin(
            sqlx::query_as!(
                FileRow,
                r#"SELECT id AS "id!", root, path, size, mtime_ns, hash, mime FROM files WHERE root = $1 AND path = $2"#,
                root,
                path
            )
            .fetch_optional(&self.pool),
        )
    }

    fn find_video_by_hash<'a>(&'a self, hash: &'a str, owner: Option<&'a str>) -> Fut<'a, Option<FileRow>> {
        Box::pin(
            // `IS`: NULL matches NULL, so an ownerless upload finds an ownerless copy.
            sqlx::query_as!(
                FileRow,
                r#"SELECT f.id AS "id!", f.root, f.path, f.size, f.mtime_ns, f.hash, f.mime
                   FROM files f JOIN videos v ON v.file_id = f.id
                   WHERE f.hash = $1 AND v.owner_id IS $2 LIMIT 1"#,
                hash,
                owner
            )
            .fetch_optional(&self.pool),
        )
    }

    fn images(&self, limit: u32) -> Fut<'_, Vec<FileRow>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            sqlx::query_as!(
                FileRow,
                r#"SELECT id AS "id!", root, path, size, mtime_ns, hash, mime FROM files
                 WHERE mime LIKE 'image/%' ORDER BY path LIMIT $1"#,
                limit
            )
            .fetch_all(&self.pool)
            .await
        })
    }

    fn in_root<'a>(&'a self, root: &'a str) -> Fut<'a, Vec<FileRow>> {
        Box::pin(
            sqlx::query_as!(
                FileRow,
                r#"SELECT id AS "id!", root, path, size, mtime_ns, hash, mime FROM files WHERE root = $1"#,
                root
            )
            .fetch_all(&self.pool),
        )
    }

    fn catalog<'a>(&'a self, file: &'a FileRow, video: Option<&'a VideoRecord<'a>>, now: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            sqlx::query!(
                "INSERT INTO files (id, root, path, size, mtime_ns, hash, mime, scanned_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET
                     size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash,
                     mime = excluded.mime, scanned_at = excluded.scanned_at",
                file.id,
                file.root,
                file.path,
                file.size,
                file.mtime_ns,
                file.hash,
                file.mime,
                now
            )
            .execute(&mut *tx)
            .await?;
            if let Some(video) = video {
                let c = video.columns();
                sqlx::query!(
                    "INSERT INTO videos (file_id, title, container, duration_ms, width, height, video_codec,
                         audio_codec, faststart, parse_error, time_index, metadata, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (file_id) DO UPDATE SET
                         title = excluded.title, container = excluded.container,
                         duration_ms = excluded.duration_ms, width = excluded.width, height = excluded.height,
                         video_codec = excluded.video_codec, audio_codec = excluded.audio_codec,
                         faststart = excluded.faststart, parse_error = excluded.parse_error,
                         time_index = excluded.time_index, metadata = excluded.metadata",
                    c.file_id,
                    c.title,
                    c.container,
                    c.duration_ms,
                    c.width,
                    c.height,
                    c.video_codec,
                    c.audio_codec,
                    c.faststart,
                    c.parse_error,
                    c.time_index,
                    c.metadata,
                    now
                )
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("DELETE FROM files WHERE id = $1", id).execute(&self.pool).await?;
            Ok(())
        })
    }
}
