//! The `account_tokens` repository on SQLite.

use super::Sqlite;
use crate::db::account_tokens::{AccountToken, AccountTokens, Purpose};
use crate::db::{Fut, Tx};

impl AccountTokens for Sqlite {
    fn replace_in<'a>(&'a self, tx: &'a mut Tx, token: &'a AccountToken) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE account_tokens SET used_at = $1
                 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
                token.created_at,
                token.user_id,
                token.purpose
            )
            .execute(&mut **tx)
            .await?;
            sqlx::query!(
                "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at, used_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                token.token_hash,
                token.user_id,
                token.purpose,
                token.created_at,
                token.expires_at,
                token.used_at
            )
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
    }

    fn find<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<AccountToken>> {
        Box::pin(
            sqlx::query_as!(
                AccountToken,
                r#"SELECT token_hash AS "token_hash!", user_id, purpose, created_at, expires_at, used_at
                   FROM account_tokens WHERE token_hash = $1"#,
                token_hash
            )
            .fetch_optional(&self.pool),
        )
    }

    fn outstanding_since<'a>(&'a self, user_id: &'a str, purpose: Purpose, now: i64) -> Fut<'a, Option<i64>> {
        Box::pin(async move {
            let purpose = purpose.as_str();
            sqlx::query_scalar!(
                r#"SELECT MAX(created_at) AS "since?: i64" FROM account_tokens
                   WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3"#,
                user_id,
                purpose,
                now
            )
            .fetch_one(&self.pool)
            .await
        })
    }

    fn spend_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        token_hash: &'a str,
        purpose: Purpose,
        now: i64,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            let purpose = purpose.as_str();
            // The conditions make the check and the spending one step: of two concurrent uses of
            // one link, exactly one changes the row.
            sqlx::query_scalar!(
                "UPDATE account_tokens SET used_at = $1
                 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
                 RETURNING user_id",
                now,
                token_hash,
                purpose
            )
            .fetch_optional(&mut **tx)
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Backend;
    use crate::db::users::{NewUser, Users};

    fn token(hash: char, purpose: Purpose, created_at: i64) -> AccountToken {
        AccountToken {
            token_hash: hash.to_string().repeat(64),
            user_id: "user-0001".into(),
            purpose: purpose.as_str().into(),
            created_at,
            expires_at: created_at + 1000,
            used_at: None,
        }
    }

    #[tokio::test]
    async fn a_token_is_spent_once_before_it_expires_and_a_newer_one_retires_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).await.unwrap();
        let user = NewUser {
            id: "user-0001",
            email: "ada@example.org",
            display_name: "ada",
            password_hash: "$argon2id$x",
            role: None,
            created_at: 0,
        };
        let mut tx = db.begin().await.unwrap();
        db.insert_in(&mut tx, &user).await.unwrap().unwrap();
        db.replace_in(&mut tx, &token('a', Purpose::Verify, 100)).await.unwrap();
        db.replace_in(&mut tx, &token('r', Purpose::Reset, 100)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(db.outstanding_since("user-0001", Purpose::Verify, 200).await.unwrap(), Some(100));
        assert_eq!(db.outstanding_since("user-0001", Purpose::Verify, 1100).await.unwrap(), None, "expired");

        let a = "a".repeat(64);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(db.spend_in(&mut tx, &a, Purpose::Reset, 200).await.unwrap(), None, "other purpose");
        assert_eq!(db.spend_in(&mut tx, &a, Purpose::Verify, 1100).await.unwrap(), None, "expired");
        assert_eq!(
            db.spend_in(&mut tx, &a, Purpose::Verify, 200).await.unwrap().as_deref(),
            Some("user-0001")
        );
        assert_eq!(db.spend_in(&mut tx, &a, Purpose::Verify, 201).await.unwrap(), None, "spent");
        tx.commit().await.unwrap();
        assert_eq!(AccountTokens::find(&db, &a).await.unwrap().unwrap().used_at, Some(200));

        // A new reset link retires the unspent one; the verify links are left alone.
        let mut tx = db.begin().await.unwrap();
        db.replace_in(&mut tx, &token('b', Purpose::Reset, 300)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(AccountTokens::find(&db, &"r".repeat(64)).await.unwrap().unwrap().used_at, Some(300));
        assert_eq!(db.outstanding_since("user-0001", Purpose::Reset, 400).await.unwrap(), Some(300));

        // Deleting the account deletes its links.
        sqlx::query("DELETE FROM users").execute(&db.pool).await.unwrap();
        assert!(AccountTokens::find(&db, &"b".repeat(64)).await.unwrap().is_none());
    }
}
