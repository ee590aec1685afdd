//! The `images` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::images::{ImageRow, Images};

impl Images for Sqlite {
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ImageRow>> {
        Box::pin(
            sqlx::query_as!(
                ImageRow,
                r#"SELECT id AS "id!", width, height, source, master, bytes, created_at FROM images WHERE id = $1"#,
                id
            )
            .fetch_optional(&self.pool),
        )
    }

    fn insert<'a>(&'a self, image: &'a ImageRow) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "INSERT INTO images (id, width, height, source, master, bytes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                image.id,
                image.width,
                image.height,
                image.source,
                image.master,
                image.bytes,
                image.created_at
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }
}
