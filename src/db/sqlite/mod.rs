//! The SQLite backend (WAL, foreign keys on): the pool, the migrations, and every repository's
//! queries, checked at compile time against the migrated schema (offline data in `.sqlx/`).

mod account_tokens;
mod captions;
mod files;
mod images;
mod outbox;
mod refresh_tokens;
mod request_stats;
mod sessions;
mod tus;
mod users;
mod videos;
mod views;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Backend, Fut, Tx};

/// File name of the embedded database inside the data dir.
const DB_FILE: &str = "kino.db";

/// The SQLite implementation of every repository.
pub(super) struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Opens (creating if needed) `<data_dir>/kino.db` and applies pending migrations.
    pub(super) async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            // WAL lets readers (every stream request) proceed while the scanner or the view
            // writer commits; NORMAL sync is durable across process crashes in WAL mode.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        sqlx::migrate!("./migrations").run(&pool).await.context("applying database migrations")?;
        Ok(Self { pool })
    }
}

/// How `<data_dir>/kino.db` stands against the migrations this binary carries, read without
/// changing it (for `kino doctor`); `None` when there is no database yet.
pub(super) async fn migrations(data_dir: &Path) -> anyhow::Result<Option<super::Migrations>> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str("sqlite:")?.filename(&path).read_only(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    let known: Vec<i64> = sqlx::migrate!("./migrations").iter().map(|m| m.version).collect();
    Ok(Some(super::Migrations {
        pending: known.iter().filter(|v| !applied.iter().any(|(a, _)| a == *v)).count(),
        failed: applied.iter().filter(|(_, ok)| !ok).count(),
        unknown: applied.iter().filter(|(a, _)| !known.contains(a)).count(),
    }))
}

impl Backend for Sqlite {
    fn ping(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { sqlx::query!("SELECT 1 AS one").fetch_one(&self.pool).await.is_ok() })
    }

    fn begin(&self) -> Fut<'_, Tx> {
        Box::pin(self.pool.begin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(db: &Sqlite, sql: &str) -> String {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(&db.pool)
                .await
                .unwrap();
        rows.into_iter().map(|(_, _, _, detail)| detail).collect::<Vec<_>>().join("\n")
    }

    #[tokio::test]
    async fn lookups_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).await.unwrap();
        let by_path = plan(&db, "SELECT id FROM files WHERE root = 'media' AND path = 'a.mp4'").await;
        assert!(by_path.contains("USING INDEX sqlite_autoindex_files_2 (root=? AND path=?)"), "{by_path}");
        let by_id = plan(&db, "SELECT title FROM videos WHERE file_id = 'x'").await;
        assert!(
            by_id.contains("USING INDEX sqlite_autoindex_videos_1") || by_id.contains("PRIMARY KEY"),
            "{by_id}"
        );
        let page = plan(
            &db,
            "SELECT v.file_id FROM videos v JOIN files f ON f.id = v.file_id ORDER BY v.created_at DESC, v.file_id LIMIT 20",
        )
        .await;
        assert!(page.contains("videos_by_created"), "{page}");
        assert!(!page.contains("TEMP B-TREE"), "the page needs no sort: {page}");
        // The listings with their filters: the public catalog, and one owner's videos.
        for (filter, index) in [
            ("v.visibility = 'public'", "videos_by_created"),
            ("v.owner_id = 'u'", "videos_by_owner (owner_id=?)"),
        ] {
            let sql = format!(
                "SELECT v.file_id FROM videos v JOIN files f ON f.id = v.file_id
                 WHERE {filter} ORDER BY v.created_at DESC, v.file_id LIMIT 20"
            );
            let listing = plan(&db, &sql).await;
            assert!(listing.contains(index) && !listing.contains("TEMP B-TREE"), "{listing}");
        }
        // An upload's deduplication: its content among the uploader's videos.
        let dedup = plan(
            &db,
            "SELECT f.id FROM files f JOIN videos v ON v.file_id = f.id WHERE f.hash = 'h' AND v.owner_id IS 'u'",
        )
        .await;
        // Either way in is an index: the hash's files, or the owner's videos.
        assert!(!dedup.contains("SCAN"), "{dedup}");
        // The watch page's tracks: one video's captions in order, without a sort.
        let tracks = plan(
            &db,
            "SELECT c.id FROM captions c LEFT JOIN files f ON f.id = c.file_id
             WHERE c.video_id = 'v' ORDER BY c.lang, c.created_at, c.id",
        )
        .await;
        assert!(
            tracks.contains("captions_by_video (video_id=?)") && !tracks.contains("TEMP B-TREE"),
            "{tracks}"
        );
    }

    #[tokio::test]
    async fn the_database_is_wal_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&db.pool).await.unwrap();
        let fks: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&db.pool).await.unwrap();
        assert_eq!((mode.as_str(), fks), ("wal", 1));
        // CHECK constraints hold: a negative size or a non-object metadata is refused.
        let bad = sqlx::query(
            "INSERT INTO files (id, root, path, size, mtime_ns, hash, mime, scanned_at)
             VALUES ('abcdefgh', 'r', 'p', -1, 0, $1, 'video/mp4', 0)",
        )
        .bind("0".repeat(64))
        .execute(&db.pool)
        .await;
        assert!(bad.is_err());
    }
}
