//! The `refresh_tokens` table: hashes of the API's refresh tokens, in rotation families.

use super::{Fut, Tx};

/// One refresh token, as stored (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshToken {
    /// Random row id.
    pub(crate) id: String,
    /// The sign-in this token descends from; every rotation keeps it.
    pub(crate) family_id: String,
    /// Whose token it is.
    pub(crate) user_id: String,
    /// Lowercase hex SHA-256 of the token.
    pub(crate) token_hash: String,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
    /// Seconds since the epoch; from then on the token renews nothing.
    pub(crate) expires_at: i64,
    /// When it was exchanged for its successor.
    pub(crate) used_at: Option<i64>,
    /// When its family was revoked (sign-out, or reuse detected).
    pub(crate) revoked_at: Option<i64>,
}

/// The `refresh_tokens` repository.
pub(crate) trait RefreshTokens {
    /// Stores a new token (the first of a family).
    fn insert<'a>(&'a self, token: &'a RefreshToken) -> Fut<'a, ()>;

    /// The token with this hash (served by the UNIQUE index).
    fn find_by_hash<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<RefreshToken>>;

    /// In one transaction: marks `old_id` used and stores `next`, if `old_id` was neither used
    /// nor revoked. `false` when it was: a concurrent use got there first, which is reuse.
    fn rotate<'a>(&'a self, old_id: &'a str, next: &'a RefreshToken, now: i64) -> Fut<'a, bool>;

    /// Revokes every token of the family not yet revoked; returns how many.
    fn revoke_family<'a>(&'a self, family_id: &'a str, now: i64) -> Fut<'a, u64>;

    /// Revokes every token of the user not yet revoked, inside the caller's transaction (a
    /// password reset); returns how many.
    fn revoke_user_in<'a>(&'a self, tx: &'a mut Tx, user_id: &'a str, now: i64) -> Fut<'a, u64>;
}
