//! The `captions` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::captions::{CaptionFile, CaptionRow, Captions};

/// A row of the two lookups, the caption file's root and path joined in.
struct Joined {
    id: String,
    video_id: String,
    lang: String,
    label: String,
    format: String,
    file_id: Option<String>,
    root: Option<String>,
    path: Option<String>,
    warnings: i64,
    created_at: i64,
}

impl From<Joined> for CaptionRow {
    fn from(r: Joined) -> Self {
        let file = match (r.file_id, r.root, r.path) {
            (Some(id), Some(root), Some(path)) => Some(CaptionFile { id, root, path }),
            _ => None,
        };
        Self {
            id: r.id,
            video_id: r.video_id,
            lang: r.lang,
            label: r.label,
            format: r.format,
            file,
            warnings: r.warnings,
            created_at: r.created_at,
        }
    }
}

impl Captions for Sqlite {
    fn by_video<'a>(&'a self, video_id: &'a str) -> Fut<'a, Vec<CaptionRow>> {
        Box::pin(async move {
            let rows = sqlx::query_as!(
                Joined,
                r#"SELECT c.id AS "id!", c.video_id, c.lang, c.label, c.format, c.file_id,
                          f.root AS "root?", f.path AS "path?", c.warnings, c.created_at
                   FROM captions c LEFT JOIN files f ON f.id = c.file_id
                   WHERE c.video_id = $1 ORDER BY c.lang, c.created_at, c.id"#,
                video_id
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(CaptionRow::from).collect())
        })
    }

    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<CaptionRow>> {
        Box::pin(async move {
            let row = sqlx::query_as!(
                Joined,
                r#"SELECT c.id AS "id!", c.video_id, c.lang, c.label, c.format, c.file_id,
                          f.root AS "root?", f.path AS "path?", c.warnings, c.created_at
                   FROM captions c LEFT JOIN files f ON f.id = c.file_id
                   WHERE c.id = $1"#,
                id
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(CaptionRow::from))
        })
    }

    fn content<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let row = sqlx::query!("SELECT content FROM captions WHERE id = $1", id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.and_then(|r| r.content))
        })
    }

    fn attached_in_root<'a>(&'a self, root: &'a str) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let rows = sqlx::query!(
                r#"SELECT f.id AS "id!" FROM captions c JOIN files f ON f.id = c.file_id WHERE f.root = $1"#,
                root
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(|r| r.id).collect())
        })
    }

    fn attach_file<'a>(&'a self, c: &'a CaptionRow) -> Fut<'a, ()> {
        Box::pin(async move {
            let file_id = c.file.as_ref().map(|f| f.id.as_str());
            sqlx::query!(
                "INSERT INTO captions (id, video_id, lang, label, format, file_id, warnings, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (file_id) DO UPDATE SET video_id = excluded.video_id, lang = excluded.lang,
                     label = excluded.label, format = excluded.format, warnings = excluded.warnings",
                c.id,
                c.video_id,
                c.lang,
                c.label,
                c.format,
                file_id,
                c.warnings,
                c.created_at
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn insert_upload<'a>(&'a self, c: &'a CaptionRow, content: &'a [u8]) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "INSERT INTO captions (id, video_id, lang, label, format, content, warnings, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                c.id,
                c.video_id,
                c.lang,
                c.label,
                c.format,
                content,
                c.warnings,
                c.created_at
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query!("DELETE FROM captions WHERE id = $1", id).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
