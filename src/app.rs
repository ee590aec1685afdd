//! The application: its services built from the configuration, the router
//! of every area with the one middleware stack, and the background tasks they need.
//!
//! Nothing here knows the transport: [`App::build`] returns a router that any listener can
//! serve, and [`Background::stop`] runs once the transport has drained.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody};

use crate::config::Config;
use crate::ingest::tus::TusStore;
use crate::library::Library;
use crate::metrics::Stats;
use crate::state::AppState;
use crate::stats::flush::Flusher;
use crate::views::tracker::{SINK_CAPACITY, Tracker};
use crate::{error, middleware, routes, views};

/// The application: a router for the transport, and the tasks running beside it.
pub(crate) struct App {
    /// Every route behind the middleware stack.
    pub(crate) router: Router,
    /// Request statistics, shared with the transport's connection counters.
    pub(crate) stats: Arc<Stats>,
    /// The background tasks, stopped after the transport has drained.
    pub(crate) background: Background,
}

impl App {
    /// Opens and scans the library, starts the view writer, the request statistics writer and
    /// the upload sweepers, and builds the router. `quic_port` is advertised in `Alt-Svc`;
    /// `shutdown` is cancelled when graceful shutdown begins (readiness fails from then on).
    pub(crate) async fn build(
        config: Arc<Config>,
        quic_port: u16,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let library = Arc::new(Library::open(&config).await.context("opening the media library")?);
        // Before any request: whatever an earlier run left in tmp is an orphan of a crash.
        let orphans = crate::ingest::sweep::sweep(library.tmp_dir(), Duration::ZERO)
            .context("deleting orphaned upload files")?;
        if orphans > 0 {
            tracing::info!(removed = orphans, "orphaned upload files of an earlier run deleted");
        }
        let report = library.scan().await.context("scanning the media roots")?;
        tracing::info!(
            files = report.files,
            updated = report.updated,
            removed = report.removed,
            unreadable = report.unreadable,
            "media roots scanned"
        );
        let (sink, records) = tokio::sync::mpsc::channel(SINK_CAPACITY);
        let secret = config.secret.as_ref().context("the server secret is not set")?.expose_secret();
        let views = Tracker::new(config.views.clone(), secret.as_bytes(), sink);
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(views::writer::run(library.db().clone(), records, writer_stop.clone()));
        let state =
            AppState::new(config, library.db().clone(), library, views.clone(), quic_port, shutdown.clone());
        let tmp = state.library.tmp_dir().to_owned();
        let tmp_sweeper =
            tokio::spawn(crate::ingest::sweep::run(tmp, state.config.limits.tmp_max_age, shutdown.clone()));
        let session_sweeper = tokio::spawn(sweep_sessions(state.sessions.clone(), shutdown.clone()));
        let sweeper = tokio::spawn(sweep_uploads(state.tus.clone(), state.db.clone(), shutdown));
        let transport = crate::mail::Transport::from_config(&state.config).context("configuring mail")?;
        let sender =
            crate::mail::Sender::new(state.db.clone(), transport, &state.config.mail, state.mail.clone())?;
        let mail_stop = CancellationToken::new();
        let mail = tokio::spawn(sender.run(mail_stop.clone()));
        let stats = state.stats.clone();
        let flusher = Flusher {
            db: state.db.clone(),
            aggregate: state.request_stats.clone(),
            config: state.config.stats.clone(),
            clock: crate::stats::flush::system_clock(),
        };
        let stats_stop = CancellationToken::new();
        let stats_flusher = tokio::spawn(flusher.run(stats_stop.clone()));
        let background = Background {
            views,
            writer,
            writer_stop,
            stats_flusher,
            stats_stop,
            sweepers: [sweeper, tmp_sweeper, session_sweeper],
            mail,
            mail_stop,
        };
        Ok(Self { router: router(state), stats, background })
    }
}

/// The tasks that run beside the router.
pub(crate) struct Background {
    views: Arc<Tracker>,
    /// The view writer, stopped last so it writes everything the connections counted.
    writer: JoinHandle<()>,
    writer_stop: CancellationToken,
    /// Writes the request statistics; its last flush runs once the connections are drained.
    stats_flusher: JoinHandle<()>,
    stats_stop: CancellationToken,
    /// The mail sender; stopped after the transport has drained, so the last requests' mail
    /// is queued (what it has not sent waits in the outbox for the next start).
    mail: JoinHandle<()>,
    mail_stop: CancellationToken,
    /// Delete expired resumable uploads, orphaned upload files and expired sessions; end when
    /// shutdown begins.
    sweepers: [JoinHandle<()>; 3],
}

impl Background {
    /// Records the view sessions still open and waits until everything queued is written.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.views.flush();
        self.writer_stop.cancel();
        self.mail_stop.cancel();
        self.writer.await.context("the view writer panicked")?;
        self.mail.await.context("the mail sender panicked")?;
        self.stats_stop.cancel();
        self.stats_flusher.await.context("the request statistics writer panicked")?;
        for sweeper in self.sweepers {
            sweeper.abort();
        }
        Ok(())
    }
}

/// Deletes abandoned resumable uploads until shutdown.
async fn sweep_uploads(tus: Arc<TusStore>, db: crate::db::Db, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(tus.sweep_interval()) => {}
            () = stop.cancelled() => return,
        }
        match tus.sweep(&db).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired resumable uploads deleted"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "sweeping expired uploads failed"),
        }
    }
}

/// How often expired sessions are deleted: they sign nobody in from the moment they expire (the
/// store checks), so this only bounds the table's size.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes expired sessions until shutdown.
async fn sweep_sessions(store: Arc<crate::accounts::store::DbStore>, stop: CancellationToken) {
    loop {
        match store.delete_expired().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired sessions deleted"),
            Err(error) => tracing::warn!(error = %error, "sweeping expired sessions failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(SESSION_SWEEP_INTERVAL) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Builds the router with its middleware; every transport serves this same service.
pub(crate) fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::pages::router())
        .merge(routes::manage::router())
        .merge(routes::stream::router())
        .merge(routes::embed::router())
        .merge(routes::videos::router())
        .merge(routes::view_stats::router())
        .merge(routes::upload::router())
        .merge(routes::images::router())
        .merge(routes::captions::router())
        .merge(routes::tus::router())
        .merge(routes::account::router())
        .merge(routes::assets::router())
        .merge(routes::stats::router());
    #[cfg(feature = "test-routes")]
    let routes = routes.merge(routes::testing::router());

    // Outermost first: HEAD bodies are dropped last (axum drops them at routing, which runs
    // inside this stack), the request id exists before anything logs, the access log sees the
    // final response (rendered errors, caught panics) and counts the bytes that go out after
    // compression, a 429 costs no handler work, an HTTP/2 answer waits for a small body's end
    // (`small_body`), and the body timeout wraps the handlers.
    let stack = ServiceBuilder::new()
        .layer(from_fn(middleware::head::strip))
        .layer(SetRequestIdLayer::x_request_id(middleware::request_id::ProcessCounter))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(from_fn_with_state(state.clone(), middleware::access_log::log))
        .layer(middleware::compression::layer())
        // Outside the error renderer: errors and preflight answers carry them too.
        .layer(middleware::security_headers::SecurityHeaders::new(&state.config.tls))
        .layer(middleware::cors::Policy::new(&state.config.cors))
        .layer(from_fn(error::render))
        .layer(from_fn(middleware::panic::catch))
        // No layer at all when every budget is off: a pass-through layer still costs its boxing.
        .option_layer(
            Some(middleware::rate_limit::RateLimits::new(&state.config, state.stats.clone()))
                .filter(|limits| limits.any_on())
                .map(|limits| {
                    from_fn_with_state((limits, state.tokens.clone()), middleware::rate_limit::limit)
                }),
        )
        .layer(from_fn_with_state(state.clone(), middleware::alt_svc::advertise))
        // Outside the body timeout: it must see the transport's body (has END_STREAM come?).
        .layer(from_fn_with_state(state.config.limits.body_idle_timeout, middleware::small_body::finish))
        .layer(RequestBodyTimeoutLayer::new(state.config.limits.body_idle_timeout))
        .map_request(|request: Request<TimeoutBody<Body>>| request.map(Body::new));

    // `Router::layer` runs once a route is chosen, so only there is its template known.
    let routed = routes
        .layer(from_fn(middleware::access_log::mark_route))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state.clone());
    // Around the routing itself, not as a `Router::layer` (which runs once a route is chosen):
    // method override must turn a form's POST into its DELETE before the route is picked. Inside
    // the stack, so a 429 costs no session lookup and a refused request is rendered like any
    // error. The session comes first: CSRF compares against its token.
    let accounts = ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), middleware::session::manage))
        .layer(from_fn_with_state(state, middleware::csrf::protect))
        .layer(from_fn(middleware::method_override::rewrite))
        .service(routed);
    Router::new().fallback_service(accounts).layer(stack)
}

#[cfg(test)]
mod tests;

/// The handlers see the database only through the repository traits.
#[cfg(test)]
mod repository_tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use futures_util::future::BoxFuture;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::db::account_tokens::{AccountToken, AccountTokens, Purpose};
    use crate::db::captions::{CaptionRow, Captions};
    use crate::db::files::{FileRow, Files};
    use crate::db::images::{ImageRow, Images};
    use crate::db::outbox::{NewMail, Outbox, QueuedMail};
    use crate::db::refresh_tokens::{RefreshToken, RefreshTokens};
    use crate::db::request_stats::{Grain, RequestStats, StatsRow};
    use crate::db::sessions::{SessionRow, Sessions};
    use crate::db::tus::{TusUpload, Uploads};
    use crate::db::users::{NewUser, UserRow, Users};
    use crate::db::videos::{Video, VideoEdit, VideoRecord, Videos};
    use crate::db::views::{CountedView, SessionRecord, Views};
    use crate::db::{Backend, Db, Fut, Tx};
    use crate::media::container::TimeIndex;

    /// A second backend, written against the repository traits alone: a database that is down.
    struct Down;

    fn down<T>() -> Fut<'static, T> {
        Box::pin(async { Err(sqlx::Error::Protocol("connection to db.internal:5432 refused".into())) })
    }

    impl Files for Down {
        fn find_by_path<'a>(&'a self, _: &'a str, _: &'a str) -> Fut<'a, Option<FileRow>> {
            down()
        }
        fn find_video_by_hash<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> Fut<'a, Option<FileRow>> {
            down()
        }
        fn images(&self, _: u32) -> Fut<'_, Vec<FileRow>> {
            down()
        }
        fn in_root<'a>(&'a self, _: &'a str) -> Fut<'a, Vec<FileRow>> {
            down()
        }
        fn catalog<'a>(&'a self, _: &'a FileRow, _: Option<&'a VideoRecord<'a>>, _: i64) -> Fut<'a, ()> {
            down()
        }
        fn delete<'a>(&'a self, _: &'a str) -> Fut<'a, ()> {
            down()
        }
    }

    impl Videos for Down {
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<Video>> {
            down()
        }
        fn list(&self, _: u32, _: u64) -> Fut<'_, Vec<Video>> {
            down()
        }
        fn count(&self) -> Fut<'_, i64> {
            down()
        }
        fn by_owner<'a>(&'a self, _: &'a str, _: u32) -> Fut<'a, Vec<Video>> {
            down()
        }
        fn set_title<'a>(&'a self, _: &'a str, _: &'a str) -> Fut<'a, ()> {
            down()
        }
        fn set_owner<'a>(&'a self, _: &'a str, _: &'a str) -> Fut<'a, ()> {
            down()
        }
        fn edit<'a>(&'a self, _: &'a str, _: &'a VideoEdit) -> Fut<'a, bool> {
            down()
        }
        fn time_index<'a>(&'a self, _: &'a str) -> Fut<'a, TimeIndex> {
            down()
        }
    }

    impl Views for Down {
        fn record<'a>(&'a self, _: &'a [CountedView], _: &'a [SessionRecord]) -> Fut<'a, ()> {
            down()
        }
        fn unique_viewers<'a>(&'a self, _: &'a str) -> Fut<'a, i64> {
            down()
        }
        fn recent_sessions<'a>(&'a self, _: &'a str, _: u32) -> Fut<'a, Vec<SessionRecord>> {
            down()
        }
        fn reach_counts<'a>(&'a self, _: &'a str, _: u32) -> Fut<'a, Vec<i64>> {
            down()
        }
        fn over_time<'a>(&'a self, _: &'a str, _: i64, _: i64) -> Fut<'a, Vec<(i64, i64)>> {
            down()
        }
    }

    impl RequestStats for Down {
        fn add_minutes<'a>(&'a self, _: &'a [StatsRow]) -> Fut<'a, ()> {
            down()
        }
        fn roll_up(&self, _: i64, _: i64) -> Fut<'_, ()> {
            down()
        }
        fn prune(&self, _: i64, _: i64) -> Fut<'_, u64> {
            down()
        }
        fn series(&self, _: Grain, _: i64, _: i64, _: i64) -> Fut<'_, Vec<StatsRow>> {
            down()
        }
    }

    impl Images for Down {
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<ImageRow>> {
            down()
        }
        fn insert<'a>(&'a self, _: &'a ImageRow) -> Fut<'a, ()> {
            down()
        }
        fn set_alt<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> Fut<'a, bool> {
            down()
        }
        fn delete<'a>(&'a self, _: &'a str) -> Fut<'a, bool> {
            down()
        }
    }

    impl Uploads for Down {
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<TusUpload>> {
            down()
        }
        fn insert<'a>(&'a self, _: &'a TusUpload) -> Fut<'a, ()> {
            down()
        }
        fn advance<'a>(&'a self, _: &'a str, _: i64, _: i64) -> Fut<'a, ()> {
            down()
        }
        fn delete<'a>(&'a self, _: &'a str) -> Fut<'a, ()> {
            down()
        }
        fn expired(&self, _: i64) -> Fut<'_, Vec<String>> {
            down()
        }
    }

    impl RefreshTokens for Down {
        fn insert<'a>(&'a self, _: &'a RefreshToken) -> Fut<'a, ()> {
            down()
        }
        fn find_by_hash<'a>(&'a self, _: &'a str) -> Fut<'a, Option<RefreshToken>> {
            down()
        }
        fn rotate<'a>(&'a self, _: &'a str, _: &'a RefreshToken, _: i64) -> Fut<'a, bool> {
            down()
        }
        fn revoke_family<'a>(&'a self, _: &'a str, _: i64) -> Fut<'a, u64> {
            down()
        }
        fn revoke_user_in<'a>(&'a self, _: &'a mut Tx, _: &'a str, _: i64) -> Fut<'a, u64> {
            down()
        }
    }

    impl Users for Down {
        fn insert_in<'a>(&'a self, _: &'a mut Tx, _: &'a NewUser<'a>) -> Fut<'a, Option<UserRow>> {
            down()
        }
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<UserRow>> {
            down()
        }
        fn find_by_email<'a>(&'a self, _: &'a str) -> Fut<'a, Option<UserRow>> {
            down()
        }
        fn set_password_hash<'a>(&'a self, _: &'a str, _: &'a str) -> Fut<'a, ()> {
            down()
        }
        fn set_password_hash_in<'a>(&'a self, _: &'a mut Tx, _: &'a str, _: &'a str, _: i64) -> Fut<'a, ()> {
            down()
        }
        fn mark_verified_in<'a>(&'a self, _: &'a mut Tx, _: &'a str, _: i64) -> Fut<'a, ()> {
            down()
        }
        fn set_role<'a>(&'a self, _: &'a str, _: &'a str) -> Fut<'a, bool> {
            down()
        }
    }

    impl Outbox for Down {
        fn enqueue_in<'a>(&'a self, _: &'a mut Tx, _: &'a NewMail) -> Fut<'a, String> {
            down()
        }
        fn due(&self, _: i64, _: i64, _: u32) -> Fut<'_, Vec<QueuedMail>> {
            down()
        }
        fn next_due(&self, _: i64) -> Fut<'_, Option<i64>> {
            down()
        }
        fn mark_sent<'a>(&'a self, _: &'a str, _: i64) -> Fut<'a, ()> {
            down()
        }
        fn mark_failed<'a>(&'a self, _: &'a str, _: &'a str, _: i64) -> Fut<'a, ()> {
            down()
        }
    }

    impl Sessions for Down {
        fn create<'a>(&'a self, _: &'a SessionRow) -> Fut<'a, bool> {
            down()
        }
        fn save<'a>(&'a self, _: &'a SessionRow) -> Fut<'a, ()> {
            down()
        }
        fn load<'a>(&'a self, _: &'a str, _: i64) -> Fut<'a, Option<SessionRow>> {
            down()
        }
        fn delete<'a>(&'a self, _: &'a str) -> Fut<'a, ()> {
            down()
        }
        fn delete_user_in<'a>(&'a self, _: &'a mut Tx, _: &'a str) -> Fut<'a, u64> {
            down()
        }
        fn delete_expired(&self, _: i64) -> Fut<'_, u64> {
            down()
        }
    }

    impl AccountTokens for Down {
        fn replace_in<'a>(&'a self, _: &'a mut Tx, _: &'a AccountToken) -> Fut<'a, ()> {
            down()
        }
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<AccountToken>> {
            down()
        }
        fn outstanding_since<'a>(&'a self, _: &'a str, _: Purpose, _: i64) -> Fut<'a, Option<i64>> {
            down()
        }
        fn spend_in<'a>(&'a self, _: &'a mut Tx, _: &'a str, _: Purpose, _: i64) -> Fut<'a, Option<String>> {
            down()
        }
    }

    impl Captions for Down {
        fn by_video<'a>(&'a self, _: &'a str) -> Fut<'a, Vec<CaptionRow>> {
            down()
        }
        fn find<'a>(&'a self, _: &'a str) -> Fut<'a, Option<CaptionRow>> {
            down()
        }
        fn content<'a>(&'a self, _: &'a str) -> Fut<'a, Option<Vec<u8>>> {
            down()
        }
        fn attached_in_root<'a>(&'a self, _: &'a str) -> Fut<'a, Vec<String>> {
            down()
        }
        fn attach_file<'a>(&'a self, _: &'a CaptionRow) -> Fut<'a, ()> {
            down()
        }
        fn insert_upload<'a>(&'a self, _: &'a CaptionRow, _: &'a [u8]) -> Fut<'a, ()> {
            down()
        }
        fn delete<'a>(&'a self, _: &'a str) -> Fut<'a, bool> {
            down()
        }
    }

    impl Backend for Down {
        fn ping(&self) -> BoxFuture<'_, bool> {
            Box::pin(async { false })
        }
        fn begin(&self) -> Fut<'_, Tx> {
            down()
        }
    }

    async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn handlers_reach_the_database_only_through_the_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        // The views API answers anyone then, so it reaches the database without an account.
        config.stats.public = true;
        let config = Arc::new(config);
        let library = Arc::new(Library::open(&config).await.unwrap());
        let (sink, _records) = tokio::sync::mpsc::channel(1);
        let views = Tracker::new(config.views.clone(), b"secret", sink);
        let db = Db::new(Arc::new(Down));
        let app = router(AppState::new(config, db, library, views, 8443, CancellationToken::new()));

        // Every handler that reads a table answers from the backend it was given: a clean 500
        // with the JSON error body under /api, the cause logged but never sent.
        for uri in ["/api/videos", "/api/videos/abcdefgh", "/api/videos/abcdefgh/views", "/stream/abcdefgh"] {
            let (status, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}: {body}");
            if uri.starts_with("/api/") {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(json["error"]["code"], "internal", "{uri}: {body}");
            }
            assert!(!body.contains("db.internal"), "{uri} leaked the cause: {body}");
        }
        assert_eq!(get(&app, "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        // The server keeps serving what needs no database.
        assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    }
}
