//! The data layer: one repository trait per table, the row types they speak in, and the [`Db`]
//! handle that reaches them; the SQLite implementation is in `sqlite/`.
//!
//! Handlers and domain code call `db.videos().find(id)` and never see a pool, so a PostgreSQL
//! backend is one more implementation of [`Backend`] (a `postgres/` module beside `sqlite/`,
//! chosen in [`Db::open`]), not a rewrite. Each backend keeps its SQL compile-time checked
//! (`query!` against its own schema, offline data in `.sqlx/`); SQL both dialects accept is
//! written the same in both, and the differences stay inside the backend's module.

pub(crate) mod account_tokens;
pub(crate) mod captions;
pub(crate) mod files;
pub(crate) mod images;
pub(crate) mod outbox;
pub(crate) mod refresh_tokens;
pub(crate) mod request_stats;
pub(crate) mod sessions;
mod sqlite;
pub(crate) mod tus;
pub(crate) mod users;
pub(crate) mod videos;
pub(crate) mod views;

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use self::account_tokens::AccountTokens;
use self::captions::Captions;
use self::files::Files;
use self::images::Images;
use self::outbox::Outbox;
use self::refresh_tokens::RefreshTokens;
use self::request_stats::RequestStats;
use self::sessions::Sessions;
use self::tus::Uploads;
use self::users::Users;
use self::videos::Videos;
use self::views::Views;

/// What every repository method returns: a boxed future, so the traits stay object-safe and
/// [`Db`] can hold any backend behind one pointer (a box per query costs nothing next to the
/// query itself).
pub(crate) type Fut<'a, T> = BoxFuture<'a, sqlx::Result<T>>;

/// A transaction several repositories write in, committed by the caller (an event and its mail
/// in the outbox). SQLite's today; a PostgreSQL backend makes this an enum of the two.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// A database backend: every table's repository, plus a liveness probe.
pub(crate) trait Backend:
    Files
    + Videos
    + Views
    + Images
    + Uploads
    + RefreshTokens
    + Outbox
    + RequestStats
    + Users
    + Sessions
    + AccountTokens
    + Captions
    + Send
    + Sync
{
    /// Whether the database answers a trivial query, for readiness.
    fn ping(&self) -> BoxFuture<'_, bool>;

    /// Starts a transaction for writes that must commit together.
    fn begin(&self) -> Fut<'_, Tx>;
}

/// The handle on the database every handler and domain function takes; cheap to clone.
#[derive(Clone)]
pub(crate) struct Db(Arc<dyn Backend>);

impl Db {
    /// Opens (creating if needed) the embedded SQLite database in `data_dir` and applies pending
    /// migrations.
    pub(crate) async fn open(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self::new(Arc::new(sqlite::Sqlite::open(data_dir).await?)))
    }

    /// A handle on an opened backend.
    pub(crate) fn new(backend: Arc<dyn Backend>) -> Self {
        Self(backend)
    }

    /// The `files` table.
    pub(crate) fn files(&self) -> &dyn Files {
        &*self.0
    }

    /// The `videos` table.
    pub(crate) fn videos(&self) -> &dyn Videos {
        &*self.0
    }

    /// The `views` and `view_sessions` tables.
    pub(crate) fn views(&self) -> &dyn Views {
        &*self.0
    }

    /// The `images` table.
    pub(crate) fn images(&self) -> &dyn Images {
        &*self.0
    }

    /// The `tus_uploads` table.
    pub(crate) fn uploads(&self) -> &dyn Uploads {
        &*self.0
    }

    /// The `refresh_tokens` table.
    pub(crate) fn refresh_tokens(&self) -> &dyn RefreshTokens {
        &*self.0
    }

    /// The `outbox` table.
    pub(crate) fn outbox(&self) -> &dyn Outbox {
        &*self.0
    }

    /// Starts a transaction; writes in it happen together at `commit`, or not at all.
    pub(crate) async fn begin(&self) -> sqlx::Result<Tx> {
        self.0.begin().await
    }

    /// The `request_stats_minute` and `request_stats_hour` tables.
    pub(crate) fn request_stats(&self) -> &dyn RequestStats {
        &*self.0
    }

    /// The `users` table.
    pub(crate) fn users(&self) -> &dyn Users {
        &*self.0
    }

    /// The `sessions` table.
    pub(crate) fn sessions(&self) -> &dyn Sessions {
        &*self.0
    }

    /// The `account_tokens` table.
    pub(crate) fn account_tokens(&self) -> &dyn AccountTokens {
        &*self.0
    }

    /// The `captions` table.
    pub(crate) fn captions(&self) -> &dyn Captions {
        &*self.0
    }

    /// Whether the database answers, for readiness.
    pub(crate) async fn ping(&self) -> bool {
        self.0.ping().await
    }
}

/// How a database stands against the migrations this binary carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Migrations {
    /// Migrations not applied yet (the next start applies them).
    pub(crate) pending: usize,
    /// Migrations recorded as failed.
    pub(crate) failed: usize,
    /// Applied migrations this binary does not know: a newer kino migrated the database.
    pub(crate) unknown: usize,
}

/// Reads the migration state of the database in `data_dir` without changing it; `None` when it
/// does not exist yet.
pub(crate) async fn migrations(data_dir: &Path) -> anyhow::Result<Option<Migrations>> {
    sqlite::migrations(data_dir).await
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// Milliseconds since the epoch, the unit of the `*_at` columns that tests need short
/// (`tus_uploads.expires_at`, `outbox.next_attempt_at`, `account_tokens`).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds since the epoch, the unit of every other `*_at` column.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
