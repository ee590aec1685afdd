//! The one sender task: delivers due outbox rows, records each failure and when to retry.

use std::time::Duration;

use anyhow::Context;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use tokio_util::sync::CancellationToken;

use super::{MailQueue, Transport};
use crate::config::MailConfig;
use crate::db::outbox::QueuedMail;
use crate::db::{Db, now_ms};

/// How often the outbox is looked at when nobody wakes the sender.
const POLL: Duration = Duration::from_secs(5);

/// The longest wait between two tries of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Messages read per look at the outbox.
const BATCH: u32 = 16;

/// Longest `last_error` kept, in characters.
const MAX_ERROR: usize = 500;

/// Delivers the outbox through one transport.
pub(crate) struct Sender {
    db: Db,
    transport: Transport,
    from: Mailbox,
    retry_backoff: Duration,
    max_attempts: i64,
    queue: MailQueue,
}

impl Sender {
    /// A sender for `db`'s outbox, woken through `queue`.
    pub(crate) fn new(
        db: Db,
        transport: Transport,
        config: &MailConfig,
        queue: MailQueue,
    ) -> anyhow::Result<Self> {
        let from = config.from.parse().context("mail.from")?;
        Ok(Self {
            db,
            transport,
            from,
            retry_backoff: config.retry_backoff,
            max_attempts: i64::from(config.max_attempts),
            queue,
        })
    }

    /// Delivers due mail until `stop` is cancelled; a delivery in flight then is abandoned (the
    /// row stays due, to be sent at the next start).
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            let wait = match self.deliver_due(&stop).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "reading the outbox failed");
                    POLL
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.queue.notify.notified() => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Sends what is due; returns how long to wait for the next message that will be.
    async fn deliver_due(&self, stop: &CancellationToken) -> anyhow::Result<Duration> {
        loop {
            let due = self.db.outbox().due(now_ms(), self.max_attempts, BATCH).await?;
            if due.is_empty() {
                break;
            }
            for mail in &due {
                // A try that cannot be recorded would be due again at once: back off instead.
                tokio::select! {
                    recorded = self.deliver(mail) => recorded.context("recording a delivery in the outbox")?,
                    () = stop.cancelled() => return Ok(POLL),
                }
            }
        }
        let next = self.db.outbox().next_due(self.max_attempts).await?;
        Ok(next.map_or(POLL, |at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(POLL)))
    }

    /// One try of one message, and its outcome recorded.
    async fn deliver(&self, mail: &QueuedMail) -> sqlx::Result<()> {
        let result = match compose(&self.from, mail) {
            Ok(message) => self.transport.send(&mail.id, message).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                tracing::info!(id = %mail.id, kind = %mail.kind, "mail sent");
                self.db.outbox().mark_sent(&mail.id, crate::db::now_secs()).await
            }
            Err(error) => {
                let attempts = mail.attempts + 1;
                let error = clip(format!("{error:#}"));
                let retry = backoff(self.retry_backoff, attempts);
                if attempts >= self.max_attempts {
                    tracing::error!(id = %mail.id, kind = %mail.kind, attempts, %error, "mail given up");
                } else {
                    tracing::warn!(id = %mail.id, kind = %mail.kind, attempts, %error, retry_in = ?retry, "mail failed; will retry");
                }
                let at = now_ms().saturating_add(i64::try_from(retry.as_millis()).unwrap_or(i64::MAX));
                self.db.outbox().mark_failed(&mail.id, &error, at).await
            }
        }
    }
}

/// The message of an outbox row: plain text, with a `Message-ID` made from the row's id so a
/// retried delivery is recognisably the same message.
pub(crate) fn compose(from: &Mailbox, mail: &QueuedMail) -> anyhow::Result<Message> {
    let to: Mailbox = mail.to_addr.parse().with_context(|| format!("recipient {:?}", mail.to_addr))?;
    let domain = from.email.domain();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .message_id(Some(format!("<{}@{domain}>", mail.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body_text.clone())
        .context("building the message")
}

/// The wait after the `attempts`-th failure: `base`, doubled per further failure, at most an hour.
fn backoff(base: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
    base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

fn clip(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_ERROR) {
        text.truncate(at);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=9).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(base, i64::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_row_becomes_a_plain_text_message_with_a_stable_message_id() {
        let mail = QueuedMail {
            id: "abcdefgh1234".into(),
            kind: "verify_email".into(),
            to_addr: "ada@example.org".into(),
            subject: "Confirm your address".into(),
            body_text: "Open this link.".into(),
            attempts: 0,
        };
        let from: Mailbox = "kino <kino@example.org>".parse().unwrap();
        let text = String::from_utf8(compose(&from, &mail).unwrap().formatted()).unwrap();
        for header in [
            "From: kino <kino@example.org>",
            "To: ada@example.org",
            "Subject: Confirm your address",
            "Message-ID: <abcdefgh1234@example.org>",
            "Content-Type: text/plain; charset=utf-8",
        ] {
            assert!(text.contains(header), "{header} missing in\n{text}");
        }
        let bad = QueuedMail { to_addr: "not an address".into(), ..mail };
        assert!(compose(&from, &bad).is_err());
    }
}
