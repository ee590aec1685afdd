//! The `refresh_tokens` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::refresh_tokens::{RefreshToken, RefreshTokens};

impl RefreshTokens for Sqlite {
    fn insert<'a>(&'a self, token: &'a RefreshToken) -> Fut<'a, ()> {
        Box::pin(async move {
            insert(&self.pool, token).await?;
            Ok(())
        })
    }

    fn find_by_hash<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<RefreshToken>> {
        Box::pin(
            sqlx::query_as!(
                RefreshToken,
                r#"SELECT id AS "id!", family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at
                   FROM refresh_tokens WHERE token_hash = $1"#,
                token_hash
            )
            .fetch_optional(&self.pool),
        )
    }

    fn rotate<'a>(&'a self, old_id: &'a str, next: &'a RefreshToken, now: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            // The condition makes the check and the mark one step: of two concurrent uses of one
            // token, exactly one changes the row.
            let marked = sqlx::query!(
                "UPDATE refresh_tokens SET used_at = $1
                 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
                now,
                old_id
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked != 1 {
                return Ok(false);
            }
            insert(&mut *tx, next).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn revoke_family<'a>(&'a self, family_id: &'a str, now: i64) -> Fut<'a, u64> {
        Box::pin(async move {
            let done = sqlx::query!(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                now,
                family_id
            )
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

async fn insert<'e, E>(executor: E, token: &RefreshToken) -> sqlx::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at, used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        token.id,
        token.family_id,
        token.user_id,
        token.token_hash,
        token.created_at,
        token.expires_at,
        token.used_at,
        token.revoked_at
    )
    .execute(executor)
    .await?;
    Ok(())
}
