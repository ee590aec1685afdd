//! The state every handler and middleware reaches: the services, behind one reference count.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::accounts::store::DbStore;
use crate::auth::Tokens;
use crate::config::Config;
use crate::db::Db;
use crate::images::ImageService;
use crate::ingest::tus::TusStore;
use crate::library::Library;
use crate::mail::MailQueue;
use crate::metrics::Stats;
use crate::stats::Aggregate;
use crate::views::tracker::Tracker;

/// State every handler and middleware can reach: one reference count to clone, because every
/// request clones it several times (each stateful middleware and extractor takes its own).
#[derive(Clone)]
pub(crate) struct AppState(Arc<Services>);

/// What [`AppState`] shares.
pub(crate) struct Services {
    /// The validated configuration.
    pub(crate) config: Arc<Config>,
    /// The `Alt-Svc` value naming the real QUIC port.
    pub(crate) alt_svc: HeaderValue,
    /// Cancelled when graceful shutdown begins.
    pub(crate) shutdown: CancellationToken,
    /// The metrics `/metrics` shows.
    pub(crate) stats: Arc<Stats>,
    /// The per-minute request statistics, flushed to the database in the background.
    pub(crate) request_stats: Arc<Aggregate>,
    /// The database: every table's repository.
    pub(crate) db: Db,
    /// The media catalog and roots.
    pub(crate) library: Arc<Library>,
    /// The view tracker.
    pub(crate) views: Arc<Tracker>,
    /// Image storage, workers, memory budget and cache.
    pub(crate) images: Arc<ImageService>,
    /// Resumable uploads in progress.
    pub(crate) tus: Arc<TusStore>,
    /// API tokens: issue, verify, rotate, revoke.
    pub(crate) tokens: Arc<Tokens>,
    /// Wakes the mail sender once a transaction that queued mail has committed.
    pub(crate) mail: MailQueue,
    /// Users, passwords, roles.
    pub(crate) accounts: Arc<Accounts>,
    /// Where sessions are kept (behind tower-sessions' `SessionStore`).
    pub(crate) sessions: Arc<DbStore>,
}

impl AppState {
    /// Builds the state; `db` is the handle handlers reach (in production, the library's own).
    /// The sender of `mail` runs apart (`app::Background`); a state without one queues mail
    /// that the next start sends.
    pub(crate) fn new(
        config: Arc<Config>,
        db: Db,
        library: Arc<Library>,
        views: Arc<Tracker>,
        quic_port: u16,
        shutdown: CancellationToken,
    ) -> Self {
        let alt_svc = HeaderValue::try_from(format!("h3=\":{quic_port}\"; ma=86400"))
            .expect("a port number makes a valid header value");
        let images = ImageService::new(&config.data_dir, db.clone(), config.images.memory_budget);
        let tus = Arc::new(
            TusStore::new(&config.data_dir, config.limits.upload_expiry).expect("the data dir is writable"),
        );
        let tokens = Arc::new(
            Tokens::new(&config, db.clone()).expect("the server secret is set before the state is built"),
        );
        let mail = MailQueue::default();
        let mut stats = Stats::new();
        stats.collect(Box::new(crate::images::Metrics::new(images.clone())));
        let stats = Arc::new(stats);
        let request_stats = Arc::default();
        let accounts = Arc::new(Accounts::new(db.clone(), &config.accounts, mail.clone()));
        let sessions = Arc::new(DbStore::new(db.clone()));
        Self(Arc::new(Services {
            config,
            alt_svc,
            shutdown,
            stats,
            request_stats,
            db,
            library,
            views,
            images,
            tus,
            tokens,
            mail,
            accounts,
            sessions,
        }))
    }
}

impl FromRef<AppState> for Arc<Tokens> {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Handlers and extractors (`accounts::CurrentUser`) take the accounts service as their state.
impl FromRef<AppState> for Arc<Accounts> {
    fn from_ref(state: &AppState) -> Self {
        state.accounts.clone()
    }
}
