//! The `sessions` repository on SQLite.

use super::Sqlite;
use crate::db::sessions::{SessionRow, Sessions};
use crate::db::{Fut, Tx};

impl Sessions for Sqlite {
    fn create<'a>(&'a self, row: &'a SessionRow) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query!(
                "INSERT INTO sessions (id_hash, data, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id_hash) DO NOTHING",
                row.id_hash,
                row.data,
                row.expires_at
            )
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn save<'a>(&'a self, row: &'a SessionRow) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "INSERT INTO sessions (id_hash, data, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
                row.id_hash,
                row.data,
                row.expires_at
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn load<'a>(&'a self, id_hash: &'a str, now: i64) -> Fut<'a, Option<SessionRow>> {
        Box::pin(
            sqlx::query_as!(
                SessionRow,
                r#"SELECT id_hash AS "id_hash!", data, expires_at FROM sessions
                   WHERE id_hash = $1 AND expires_at > $2"#,
                id_hash,
                now
            )
            .fetch_optional(&self.pool),
        )
    }

    fn delete<'a>(&'a self, id_hash: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", id_hash).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn delete_user_in<'a>(&'a self, tx: &'a mut Tx, user_id: &'a str) -> Fut<'a, u64> {
        Box::pin(async move {
            // A scan of the table, which has no index on the user: resets are rare, and an index
            // on the expression would cost every session write. `user_id` is the key
            // `accounts::session` keeps the signed-in user under. Dialect: json_extract.
            let done =
                sqlx::query!("DELETE FROM sessions WHERE json_extract(data, '$.user_id') = $1", user_id)
                    .execute(&mut **tx)
                    .await?;
            Ok(done.rows_affected())
        })
    }

    fn delete_expired(&self, now: i64) -> Fut<'_, u64> {
        Box::pin(async move {
            let done =
                sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now).execute(&self.pool).await?;
            Ok(done.rows_affected())
        })
    }
}
