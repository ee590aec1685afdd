//! The `users` table: one row per account.

use super::{Fut, Tx};

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRow {
    /// Random short id (`id::random_id`).
    pub(crate) id: String,
    /// The sign-in email, unique without regard to case.
    pub(crate) email: String,
    /// The name shown in the header and, later, beside uploads.
    pub(crate) display_name: String,
    /// The argon2id PHC string.
    pub(crate) password_hash: String,
    /// `admin`, `uploader` or `viewer`.
    pub(crate) role: String,
    /// When the email was verified, seconds since the epoch.
    pub(crate) email_verified_at: Option<i64>,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
    /// When a password reset last set the password, seconds since the epoch.
    pub(crate) password_changed_at: Option<i64>,
}

/// A new account; its role is decided by [`Users::insert_in`].
pub(crate) struct NewUser<'a> {
    /// Random short id.
    pub(crate) id: &'a str,
    /// The sign-in email.
    pub(crate) email: &'a str,
    /// The display name.
    pub(crate) display_name: &'a str,
    /// The argon2id PHC string.
    pub(crate) password_hash: &'a str,
    /// The role to give, or `None` for "admin if this is the first account, else viewer".
    pub(crate) role: Option<&'a str>,
    /// Seconds since the epoch.
    pub(crate) created_at: i64,
}

/// The `users` repository.
pub(crate) trait Users {
    /// Inserts an account inside the caller's transaction (with its verification mail) and
    /// returns it as stored; `Ok(None)` when the email is taken. The first-account rule is
    /// decided inside the one statement, so two sign-ups racing on an empty table cannot both
    /// become admin.
    fn insert_in<'a>(&'a self, tx: &'a mut Tx, user: &'a NewUser<'a>) -> Fut<'a, Option<UserRow>>;

    /// The account with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<UserRow>>;

    /// The account with this email (any case).
    fn find_by_email<'a>(&'a self, email: &'a str) -> Fut<'a, Option<UserRow>>;

    /// Replaces an account's password hash (a rehash with new parameters).
    fn set_password_hash<'a>(&'a self, id: &'a str, hash: &'a str) -> Fut<'a, ()>;

    /// Replaces an account's password hash inside the caller's transaction (a password reset),
    /// recording the change at `now` (seconds).
    fn set_password_hash_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        id: &'a str,
        hash: &'a str,
        now: i64,
    ) -> Fut<'a, ()>;

    /// Records that the account's email was verified at `now` (seconds), unless it was before.
    fn mark_verified_in<'a>(&'a self, tx: &'a mut Tx, id: &'a str, now: i64) -> Fut<'a, ()>;

    /// Sets the role of the account with this email; `false` when there is none.
    fn set_role<'a>(&'a self, email: &'a str, role: &'a str) -> Fut<'a, bool>;
}
