//! The `sessions` table: server-side session records, keyed by the hash of their cookie id.

use super::{Fut, Tx};

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRow {
    /// BLAKE3 (hex) of the session id the cookie carries.
    pub(crate) id_hash: String,
    /// The session's data: a JSON object.
    pub(crate) data: String,
    /// Seconds since the epoch after which the session is gone.
    pub(crate) expires_at: i64,
}

/// The `sessions` repository.
pub(crate) trait Sessions {
    /// Inserts a new session; `false` when its id hash already exists (a collision to retry).
    fn create<'a>(&'a self, row: &'a SessionRow) -> Fut<'a, bool>;

    /// Inserts or replaces a session.
    fn save<'a>(&'a self, row: &'a SessionRow) -> Fut<'a, ()>;

    /// The session with this id hash, unless it expired before `now`.
    fn load<'a>(&'a self, id_hash: &'a str, now: i64) -> Fut<'a, Option<SessionRow>>;

    /// Deletes a session (sign-out, id rotation).
    fn delete<'a>(&'a self, id_hash: &'a str) -> Fut<'a, ()>;

    /// Deletes every session signed in as `user_id` inside the caller's transaction (a password
    /// reset); returns how many.
    fn delete_user_in<'a>(&'a self, tx: &'a mut Tx, user_id: &'a str) -> Fut<'a, u64>;

    /// Deletes every session that expired before `now`; returns how many.
    fn delete_expired(&self, now: i64) -> Fut<'_, u64>;
}
