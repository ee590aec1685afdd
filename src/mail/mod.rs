//! Mail from one place: rows of the `outbox` table, written in the transaction of the event that
//! causes them, delivered by one sender task with retries and exponential backoff.
//!
//! Delivery is at least once: a message the relay took just before a crash or a shutdown may be
//! sent again (its `Message-ID` stays the same, so clients can fold the copies).

mod sender;
mod transport;

use std::sync::Arc;

use tokio::sync::Notify;

pub(crate) use sender::Sender;
pub(crate) use transport::Transport;

/// The handle that wakes the sender after a transaction with mail in it commits (otherwise it
/// looks at the outbox every few seconds).
#[derive(Debug, Clone, Default)]
pub(crate) struct MailQueue {
    notify: Arc<Notify>,
}

impl MailQueue {
    /// Tells the sender that mail may be due now.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}
