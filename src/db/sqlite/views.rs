//! The `views` and `view_sessions` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::views::{CountedView, SessionRecord, Views, reach_from_groups};

impl Views for Sqlite {
    fn record<'a>(&'a self, views: &'a [CountedView], sessions: &'a [SessionRecord]) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            for view in views {
                // A video deleted while it was being watched: its view goes with it (a foreign-key
                // failure would lose the whole batch).
                sqlx::query!(
                    "INSERT INTO views (video_id, viewer, counted_at)
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM videos WHERE file_id = $1)",
                    view.video_id,
                    view.viewer,
                    view.counted_at
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query!(
                    "UPDATE videos SET view_count = view_count + 1 WHERE file_id = $1",
                    view.video_id
                )
                .execute(&mut *tx)
                .await?;
            }
            for s in sessions {
                sqlx::query!(
                    "INSERT INTO view_sessions (video_id, viewer, started_at, ended_at, reason, reached, covered_ms)
                     SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM videos WHERE file_id = $1)",
                    s.video_id,
                    s.viewer,
                    s.started_at,
                    s.ended_at,
                    s.reason,
                    s.reached,
                    s.covered_ms
                )
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    fn unique_viewers<'a>(&'a self, video_id: &'a str) -> Fut<'a, i64> {
        Box::pin(
            sqlx::query_scalar!(
                r#"SELECT COUNT(DISTINCT viewer) AS "n!: i64" FROM views WHERE video_id = $1"#,
                video_id
            )
            .fetch_one(&self.pool),
        )
    }

    fn recent_sessions<'a>(&'a self, video_id: &'a str, limit: u32) -> Fut<'a, Vec<SessionRecord>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            sqlx::query_as!(
                SessionRecord,
                "SELECT video_id, viewer, started_at, ended_at, reason, reached, covered_ms
                 FROM view_sessions WHERE video_id = $1 ORDER BY ended_at DESC LIMIT $2",
                video_id,
                limit
            )
            .fetch_all(&self.pool)
            .await
        })
    }

    fn reach_counts<'a>(&'a self, video_id: &'a str, k: u32) -> Fut<'a, Vec<i64>> {
        Box::pin(async move {
            let groups = sqlx::query!(
                r#"SELECT reached, COUNT(*) AS "sessions!: i64" FROM view_sessions WHERE video_id = $1 GROUP BY reached"#,
                video_id
            )
            .fetch_all(&self.pool)
            .await?;
            let groups: Vec<(i64, i64)> = groups.into_iter().map(|g| (g.reached, g.sessions)).collect();
            Ok(reach_from_groups(&groups, k))
        })
    }

    fn over_time<'a>(&'a self, video_id: &'a str, from: i64, slot: i64) -> Fut<'a, Vec<(i64, i64)>> {
        let slot = slot.max(1);
        Box::pin(async move {
            let rows = sqlx::query!(
                r#"SELECT (counted_at / $1) * $1 AS "at!: i64", COUNT(*) AS "views!: i64"
                   FROM views WHERE video_id = $2 AND counted_at >= $3 GROUP BY 1 ORDER BY 1"#,
                slot,
                video_id,
                from
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(|r| (r.at, r.views)).collect())
        })
    }
}
