//! The `users` repository on SQLite.

use super::Sqlite;
use crate::db::users::{NewUser, UserRow, Users};
use crate::db::{Fut, Tx};

impl Users for Sqlite {
    fn insert_in<'a>(&'a self, tx: &'a mut Tx, user: &'a NewUser<'a>) -> Fut<'a, Option<UserRow>> {
        Box::pin(
            sqlx::query_as!(
                UserRow,
                r#"INSERT INTO users (id, email, display_name, password_hash, role, created_at)
                   VALUES ($1, $2, $3, $4,
                           COALESCE($5, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'viewer' ELSE 'admin' END),
                           $6)
                   ON CONFLICT (email) DO NOTHING
                   RETURNING id AS "id!", email AS "email!", display_name AS "display_name!",
                             password_hash AS "password_hash!", role AS "role!", email_verified_at,
                             created_at AS "created_at!", password_changed_at"#,
                user.id,
                user.email,
                user.display_name,
                user.password_hash,
                user.role,
                user.created_at
            )
            .fetch_optional(&mut **tx),
        )
    }

    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<UserRow>> {
        Box::pin(
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", email, display_name, password_hash, role, email_verified_at, created_at,
                          password_changed_at
                   FROM users WHERE id = $1"#,
                id
            )
            .fetch_optional(&self.pool),
        )
    }

    fn find_by_email<'a>(&'a self, email: &'a str) -> Fut<'a, Option<UserRow>> {
        Box::pin(
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", email, display_name, password_hash, role, email_verified_at, created_at,
                          password_changed_at
                   FROM users WHERE email = $1"#,
                email
            )
            .fetch_optional(&self.pool),
        )
    }

    fn set_password_hash<'a>(&'a self, id: &'a str, hash: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("UPDATE users SET password_hash = $1 WHERE id = $2", hash, id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn set_password_hash_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        id: &'a str,
        hash: &'a str,
        now: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3",
                hash,
                now,
                id
            )
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
    }

    fn mark_verified_in<'a>(&'a self, tx: &'a mut Tx, id: &'a str, now: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2",
                now,
                id
            )
            .execute(&mut **tx)
            .await?;
            Ok(())
        })
    }

    fn set_role<'a>(&'a self, email: &'a str, role: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query!("UPDATE users SET role = $1 WHERE email = $2", role, email)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
