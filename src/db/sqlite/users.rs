//! The `users` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::users::{NewUser, UserRow, Users};

impl Users for Sqlite {
    fn insert<'a>(&'a self, user: &'a NewUser<'a>) -> Fut<'a, Option<UserRow>> {
        Box::pin(async move {
            let inserted = sqlx::query_as!(
                UserRow,
                r#"INSERT INTO users (id, email, display_name, password_hash, role, created_at)
                   VALUES ($1, $2, $3, $4,
                           COALESCE($5, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'viewer' ELSE 'admin' END),
                           $6)
                   ON CONFLICT (email) DO NOTHING
                   RETURNING id AS "id!", email AS "email!", display_name AS "display_name!",
                             password_hash AS "password_hash!", role AS "role!", email_verified_at,
                             created_at AS "created_at!""#,
                user.id,
                user.email,
                user.display_name,
                user.password_hash,
                user.role,
                user.created_at
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(inserted)
        })
    }

    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<UserRow>> {
        Box::pin(
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", email, display_name, password_hash, role, email_verified_at, created_at
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
                r#"SELECT id AS "id!", email, display_name, password_hash, role, email_verified_at, created_at
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

    fn set_role<'a>(&'a self, email: &'a str, role: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let done = sqlx::query!("UPDATE users SET role = $1 WHERE email = $2", role, email)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
