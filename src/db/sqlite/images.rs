//! The `images` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::images::{ImageOwner, ImageRow, Images};

impl Images for Sqlite {
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<ImageRow>> {
        Box::pin(async move {
            let row = sqlx::query!(
                r#"SELECT i.id AS "id!", i.width, i.height, i.source, i.master, i.bytes, i.created_at, i.alt,
                          u.id AS "owner_id?", u.display_name AS "owner_name?"
                   FROM images i LEFT JOIN users u ON u.id = i.owner_id
                   WHERE i.id = $1"#,
                id
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| ImageRow {
                id: r.id,
                width: r.width,
                height: r.height,
                source: r.source,
                master: r.master,
                bytes: r.bytes,
                created_at: r.created_at,
                owner: r.owner_id.zip(r.owner_name).map(|(id, display_name)| ImageOwner { id, display_name }),
                alt: r.alt,
            }))
        })
    }

    fn insert<'a>(&'a self, image: &'a ImageRow) -> Fut<'a, ()> {
        Box::pin(async move {
            let owner = image.owner.as_ref().map(|o| o.id.as_str());
            sqlx::query!(
                "INSERT INTO images (id, width, height, source, master, bytes, created_at, owner_id, alt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                image.id,
                image.width,
                image.height,
                image.source,
                image.master,
                image.bytes,
                image.created_at,
                owner,
                image.alt
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn set_alt<'a>(&'a self, id: &'a str, alt: Option<&'a str>) -> Fut<'a, bool> {
        Box::pin(async move {
            let done =
                sqlx::query!("UPDATE images SET alt = $1 WHERE id = $2", alt, id).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query!("DELETE FROM images WHERE id = $1", id).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
