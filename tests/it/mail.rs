//! Mail from the outbox: a real SMTP sink on loopback receives it, a relay that never answers
//! makes a delivery fail within its timeouts and be retried, and the default file transport
//! writes `.eml` files.

use std::path::Path;
use std::time::Duration;

use kino::config::MailTransport;
use kino_test_support::{BlackHole, Received, SmtpSink};
use serde_json::{Value, json};

use crate::common::{TEST_TIMEOUT, TestApp, spawn_app, spawn_app_with};

/// Queues a message through the test route (a transaction, committed, the sender woken).
async fn queue(app: &TestApp, to: &str) -> String {
    let body = json!({ "to": to, "subject": "Confirm your address", "body": "Open https://kino.test/verify?t=abc\n.\nA line that starts with a dot." });
    let response = app.h2().post(app.tls_url("/__test/mail")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// The outbox row of `id`: attempts, last error, whether it was sent.
async fn row(app: &TestApp, id: &str) -> (i64, Option<String>, bool) {
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", app.data_dir().join("kino.db").display()))
        .await
        .unwrap();
    let (attempts, error, sent): (i64, Option<String>, Option<i64>) =
        sqlx::query_as("SELECT attempts, last_error, sent_at FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    db.close().await;
    (attempts, error, sent.is_some())
}

/// Polls until `done` holds for the row of `id`, giving up at the test timeout.
async fn wait_for(
    app: &TestApp,
    id: &str,
    done: impl Fn(&(i64, Option<String>, bool)) -> bool,
) -> (i64, Option<String>, bool) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        let state = row(app, id).await;
        if done(&state) {
            return state;
        }
        assert!(tokio::time::Instant::now() < deadline, "outbox row {id} stuck at {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_headers(message: &Received, id: &str) {
    assert_eq!(message.header("from").as_deref(), Some("kino <kino@kino.test>"));
    assert_eq!(message.header("to").as_deref(), Some("ada@example.org"));
    assert_eq!(message.header("subject").as_deref(), Some("Confirm your address"));
    assert_eq!(message.header("message-id"), Some(format!("<{id}@kino.test>")));
    assert_eq!(message.header("content-type").as_deref(), Some("text/plain; charset=utf-8"));
    assert!(message.header("date").is_some());
    assert!(message.body().contains("https://kino.test/verify?t=abc"), "{}", message.body());
    assert!(message.body().contains("\r\n.\r\nA line that starts with a dot."), "{:?}", message.body());
}

#[tokio::test]
async fn an_smtp_relay_receives_the_message_with_its_headers() {
    let sink = SmtpSink::start().await.unwrap();
    let app = spawn_app_with(|config| {
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp_host = Some("127.0.0.1".into());
        config.mail.smtp_port = sink.addr().port();
        config.mail.smtp_starttls = false;
        config.mail.from = "kino <kino@kino.test>".into();
    })
    .await;
    let id = queue(&app, "ada@example.org").await;
    let message = sink.next(TEST_TIMEOUT).await.expect("the sink receives the message");
    assert_eq!(
        (message.mail_from.as_str(), message.rcpt_to.as_slice()),
        ("kino@kino.test", &["ada@example.org".to_owned()][..])
    );
    assert_headers(&message, &id);
    assert_eq!(wait_for(&app, &id, |row| row.2).await, (1, None, true));
}

#[tokio::test]
async fn a_relay_that_never_answers_fails_within_the_timeouts_and_is_retried_with_backoff() {
    let hole = BlackHole::start().await.unwrap();
    let app = spawn_app_with(|config| {
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp_host = Some("127.0.0.1".into());
        config.mail.smtp_port = hole.addr().port();
        config.mail.smtp_starttls = false;
        config.mail.connect_timeout = Duration::from_millis(300);
        config.mail.send_timeout = Duration::from_secs(1);
        config.mail.retry_backoff = Duration::from_millis(100);
        config.mail.max_attempts = 3;
    })
    .await;
    let id = queue(&app, "ada@example.org").await;
    let (attempts, error, sent) = wait_for(&app, &id, |row| row.0 >= 3).await;
    assert_eq!((attempts, sent), (3, false));
    let error = error.expect("the last error is kept");
    assert!(error.contains("timed out") || error.contains("mail.send_timeout"), "{error}");
    // Every try connected (the relay accepted TCP and then said nothing).
    assert!(hole.connections() >= 3, "{} connections", hole.connections());
}

#[tokio::test]
async fn by_default_mail_is_written_as_a_parsable_eml_file() {
    let app = spawn_app_with(|config| config.mail.from = "kino <kino@kino.test>".into()).await;
    let id = queue(&app, "ada@example.org").await;
    assert_eq!(wait_for(&app, &id, |row| row.2).await, (1, None, true));
    let path = app.data_dir().join("mail").join(format!("{id}.eml"));
    let data = std::fs::read_to_string(&path).unwrap();
    assert!(data.contains("\r\n\r\n"), "a head and a body: {data}");
    let message = Received { mail_from: String::new(), rcpt_to: Vec::new(), data };
    assert_headers(&message, &id);
    assert_private(&path);
}

fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

#[tokio::test]
async fn an_smtp_password_encrypted_with_another_secret_stops_the_start_with_a_clear_error() {
    // A value that decrypts under no secret: the server refuses to start rather than fail every
    // delivery later.
    let dir = tempfile::tempdir().unwrap();
    let mut config = kino::Config::for_tests(dir.path());
    config.media_dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("media")];
    config.mail.transport = MailTransport::Smtp;
    config.mail.smtp_host = Some("127.0.0.1".into());
    config.mail.smtp_username = Some("kino".into());
    config.mail.smtp_password =
        Some("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned().into());
    kino::tls::install_crypto_provider();
    let error = match kino::Application::build(config).await {
        Ok(_) => panic!("the server started with an unreadable password"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("mail.smtp_password") && error.contains("does not decrypt"), "{error}");
    // The default transport needs nothing.
    let app = spawn_app().await;
    assert_eq!(app.h2().get(app.tls_url("/healthz")).send().await.unwrap().status(), 200);
}
