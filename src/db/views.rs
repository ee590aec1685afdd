//! The `views` and `view_sessions` tables: counted views and the outcome of every session.

use sqlx::{FromRow, Sqlite, SqliteExecutor, Transaction};

/// A view the tracker counted, waiting to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CountedView {
    /// The video.
    pub(crate) video_id: String,
    /// The viewer key, hex.
    pub(crate) viewer: String,
    /// Seconds since the epoch.
    pub(crate) counted_at: i64,
}

/// A session that ended (went idle, or the server stopped), for retention statistics.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub(crate) struct SessionRecord {
    /// The video.
    pub(crate) video_id: String,
    /// The viewer key, hex.
    pub(crate) viewer: String,
    /// Seconds since the epoch.
    pub(crate) started_at: i64,
    /// Seconds since the epoch.
    pub(crate) ended_at: i64,
    /// The decision's reason code.
    pub(crate) reason: String,
    /// Bit i set: checkpoint i was reached.
    pub(crate) reached: i64,
    /// Media milliseconds delivered.
    pub(crate) covered_ms: i64,
}

impl CountedView {
    /// Inserts a batch of views and bumps each video's count, in the caller's transaction, so
    /// `videos.view_count` always equals the rows in `views`.
    pub(crate) async fn insert_batch(
        tx: &mut Transaction<'_, Sqlite>,
        batch: &[CountedView],
    ) -> sqlx::Result<()> {
        for view in batch {
            sqlx::query("INSERT INTO views (video_id, viewer, counted_at) VALUES ($1, $2, $3)")
                .bind(&view.video_id)
                .bind(&view.viewer)
                .bind(view.counted_at)
                .execute(&mut **tx)
                .await?;
            sqlx::query("UPDATE videos SET view_count = view_count + 1 WHERE file_id = $1")
                .bind(&view.video_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// How many distinct viewers a video has had.
    pub(crate) async fn unique_viewers(db: impl SqliteExecutor<'_>, video_id: &str) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(DISTINCT viewer) FROM views WHERE video_id = $1")
            .bind(video_id)
            .fetch_one(db)
            .await
    }
}

impl SessionRecord {
    /// Inserts ended sessions in the caller's transaction.
    pub(crate) async fn insert_batch(
        tx: &mut Transaction<'_, Sqlite>,
        batch: &[SessionRecord],
    ) -> sqlx::Result<()> {
        for s in batch {
            sqlx::query(
                "INSERT INTO view_sessions (video_id, viewer, started_at, ended_at, reason, reached, covered_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&s.video_id)
            .bind(&s.viewer)
            .bind(s.started_at)
            .bind(s.ended_at)
            .bind(&s.reason)
            .bind(s.reached)
            .bind(s.covered_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// The most recent ended sessions of a video (served by `view_sessions_by_video`).
    pub(crate) async fn recent(
        db: impl SqliteExecutor<'_>,
        video_id: &str,
        limit: u32,
    ) -> sqlx::Result<Vec<Self>> {
        sqlx::query_as(
            "SELECT video_id, viewer, started_at, ended_at, reason, reached, covered_ms
             FROM view_sessions WHERE video_id = $1 ORDER BY ended_at DESC LIMIT $2",
        )
        .bind(video_id)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
    }

    /// How many ended sessions reached each checkpoint bit (0..k).
    pub(crate) async fn reach_counts(
        db: impl SqliteExecutor<'_>,
        video_id: &str,
        k: u32,
    ) -> sqlx::Result<Vec<i64>> {
        // Few distinct masks exist even over millions of sessions (players reach checkpoints in
        // order), so grouping in SQL and splitting bits here reads little.
        let groups: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT reached, COUNT(*) FROM view_sessions WHERE video_id = $1 GROUP BY reached",
        )
        .bind(video_id)
        .fetch_all(db)
        .await?;
        Ok((0..k)
            .map(|i| groups.iter().filter(|(mask, _)| mask & (1 << i) != 0).map(|(_, n)| n).sum())
            .collect())
    }
}
