//! The `tus_uploads` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::tus::{TusUpload, Uploads};

impl Uploads for Sqlite {
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<TusUpload>> {
        Box::pin(
            sqlx::query_as!(
                TusUpload,
                r#"SELECT id AS "id!", length, received, metadata, created_at, expires_at, owner_id
                   FROM tus_uploads WHERE id = $1"#,
                id
            )
            .fetch_optional(&self.pool),
        )
    }

    fn insert<'a>(&'a self, upload: &'a TusUpload) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "INSERT INTO tus_uploads (id, length, received, metadata, created_at, expires_at, owner_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                upload.id,
                upload.length,
                upload.received,
                upload.metadata,
                upload.created_at,
                upload.expires_at,
                upload.owner_id
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn advance<'a>(&'a self, id: &'a str, received: i64, expires_at: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE tus_uploads SET received = $1, expires_at = $2 WHERE id = $3",
                received,
                expires_at,
                id
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("DELETE FROM tus_uploads WHERE id = $1", id).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn expired(&self, now: i64) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            sqlx::query_scalar!(r#"SELECT id AS "id!" FROM tus_uploads WHERE expires_at < $1"#, now)
                .fetch_all(&self.pool)
                .await
        })
    }
}
