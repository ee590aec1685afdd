//! The `refresh_tokens` repository on SQLite.

use super::Sqlite;
use crate::db::refresh_tokens::{RefreshToken, RefreshTokens};
use crate::db::{Fut, Tx};

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

    fn revoke_user_in<'a>(&'a self, tx: &'a mut Tx, user_id: &'a str, now: i64) -> Fut<'a, u64> {
        Box::pin(async move {
            let done = sqlx::query!(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                now,
                user_id
            )
            .execute(&mut **tx)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, hash: char) -> RefreshToken {
        RefreshToken {
            id: id.into(),
            family_id: "family-1".into(),
            user_id: "user-1".into(),
            token_hash: hash.to_string().repeat(64),
            created_at: 1,
            expires_at: i64::MAX,
            used_at: None,
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn a_token_rotates_once_and_revocation_covers_its_family() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).await.unwrap();
        db.insert(&token("token-a1", 'a')).await.unwrap();
        assert!(db.rotate("token-a1", &token("token-b1", 'b'), 10).await.unwrap());
        // The second use of the same token changes nothing and stores no successor.
        assert!(!db.rotate("token-a1", &token("token-c1", 'c'), 11).await.unwrap());
        assert!(db.find_by_hash(&"c".repeat(64)).await.unwrap().is_none());
        assert_eq!(db.find_by_hash(&"a".repeat(64)).await.unwrap().unwrap().used_at, Some(10));
        assert_eq!(db.revoke_family("family-1", 12).await.unwrap(), 2);
        assert_eq!(db.revoke_family("family-1", 13).await.unwrap(), 0);
        assert!(!db.rotate("token-b1", &token("token-d1", 'd'), 14).await.unwrap(), "revoked");
        assert_eq!(db.find_by_hash(&"b".repeat(64)).await.unwrap().unwrap().revoked_at, Some(12));
    }
}
