//! The `outbox` repository on SQLite.

use super::Sqlite;
use crate::db::outbox::{NewMail, Outbox, QueuedMail};
use crate::db::{Fut, Tx, now_ms, now_secs};

impl Outbox for Sqlite {
    fn enqueue_in<'a>(&'a self, tx: &'a mut Tx, mail: &'a NewMail) -> Fut<'a, String> {
        Box::pin(async move {
            let id = crate::id::random_id::<12>();
            let now = now_secs();
            let due = now_ms();
            sqlx::query!(
                "INSERT INTO outbox (id, kind, to_addr, subject, body_text, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                id,
                mail.kind,
                mail.to_addr,
                mail.subject,
                mail.body_text,
                now,
                due
            )
            .execute(&mut **tx)
            .await?;
            Ok(id)
        })
    }

    fn due(&self, now_ms: i64, max_attempts: i64, limit: u32) -> Fut<'_, Vec<QueuedMail>> {
        Box::pin(
            sqlx::query_as!(
                QueuedMail,
                r#"SELECT id AS "id!", kind, to_addr, subject, body_text, attempts
                   FROM outbox
                   WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < $2
                   ORDER BY next_attempt_at LIMIT $3"#,
                now_ms,
                max_attempts,
                limit
            )
            .fetch_all(&self.pool),
        )
    }

    fn next_due(&self, max_attempts: i64) -> Fut<'_, Option<i64>> {
        Box::pin(async move {
            sqlx::query_scalar!(
                r#"SELECT MIN(next_attempt_at) AS "due?: i64" FROM outbox
                   WHERE sent_at IS NULL AND attempts < $1"#,
                max_attempts
            )
            .fetch_one(&self.pool)
            .await
        })
    }

    fn mark_sent<'a>(&'a self, id: &'a str, now: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2",
                now,
                id
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn mark_failed<'a>(&'a self, id: &'a str, error: &'a str, next_attempt_at: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3",
                error,
                next_attempt_at,
                id
            )
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Backend;

    fn mail() -> NewMail {
        NewMail {
            kind: "verify_email".into(),
            to_addr: "ada@example.org".into(),
            subject: "Confirm".into(),
            body_text: "Open the link.".into(),
        }
    }

    #[tokio::test]
    async fn mail_commits_with_its_transaction_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        db.enqueue_in(&mut tx, &mail()).await.unwrap();
        drop(tx);
        assert!(db.due(i64::MAX, 8, 10).await.unwrap().is_empty(), "a rolled-back event sends nothing");

        let mut tx = db.begin().await.unwrap();
        let id = db.enqueue_in(&mut tx, &mail()).await.unwrap();
        tx.commit().await.unwrap();
        let due = db.due(i64::MAX, 8, 10).await.unwrap();
        assert_eq!((due.len(), due[0].id.as_str(), due[0].attempts), (1, id.as_str(), 0));

        let later = (now_secs() + 3600) * 1000;
        db.mark_failed(&id, "relay down", later).await.unwrap();
        assert!(db.due(later - 1, 8, 10).await.unwrap().is_empty(), "not due before its retry");
        assert_eq!(db.next_due(8).await.unwrap(), Some(later));
        assert_eq!(db.due(later, 8, 10).await.unwrap()[0].attempts, 1);
        assert!(db.due(later, 1, 10).await.unwrap().is_empty(), "out of attempts");
        db.mark_sent(&id, now_secs()).await.unwrap();
        assert_eq!(db.next_due(8).await.unwrap(), None);
    }
}
