//! The `outbox` table: mail written with the event that causes it, delivered by one sender.

use super::{Fut, Tx};

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewMail {
    /// What the mail is for (`verify_email`, `password_reset`, …).
    pub(crate) kind: String,
    /// The recipient's address.
    pub(crate) to_addr: String,
    /// The subject line.
    pub(crate) subject: String,
    /// The plain-text body.
    pub(crate) body_text: String,
}

/// A queued message, as the sender reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueuedMail {
    /// Random id; also the `.eml` file's name and the `Message-ID`'s left part.
    pub(crate) id: String,
    /// What the mail is for.
    pub(crate) kind: String,
    /// The recipient's address.
    pub(crate) to_addr: String,
    /// The subject line.
    pub(crate) subject: String,
    /// The plain-text body.
    pub(crate) body_text: String,
    /// Deliveries tried so far.
    pub(crate) attempts: i64,
}

/// The `outbox` repository.
pub(crate) trait Outbox {
    /// Queues `mail` inside the caller's transaction, so it commits (or not) with the event that
    /// caused it; due at once. Returns the new row's id.
    fn enqueue_in<'a>(&'a self, tx: &'a mut Tx, mail: &'a NewMail) -> Fut<'a, String>;

    /// Unsent messages due at `now_ms` with fewer than `max_attempts` tries, oldest due first.
    fn due(&self, now_ms: i64, max_attempts: i64, limit: u32) -> Fut<'_, Vec<QueuedMail>>;

    /// When the next unsent message with tries left is due (ms), if there is one.
    fn next_due(&self, max_attempts: i64) -> Fut<'_, Option<i64>>;

    /// Records a delivery.
    fn mark_sent<'a>(&'a self, id: &'a str, now: i64) -> Fut<'a, ()>;

    /// Records a failed try: one more attempt, its error, and when to try again (ms).
    fn mark_failed<'a>(&'a self, id: &'a str, error: &'a str, next_attempt_at: i64) -> Fut<'a, ()>;
}
