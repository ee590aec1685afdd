//! The `users` table: one row per account.

use super::Fut;

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
}

/// A new account; its role is decided by [`Users::insert`].
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
    /// Inserts an account and returns it as stored; `Ok(None)` when the email is taken. The
    /// first-account rule is decided inside the one statement, so two sign-ups racing on an
    /// empty table cannot both become admin.
    fn insert<'a>(&'a self, user: &'a NewUser<'a>) -> Fut<'a, Option<UserRow>>;

    /// The account with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<UserRow>>;

    /// The account with this email (any case).
    fn find_by_email<'a>(&'a self, email: &'a str) -> Fut<'a, Option<UserRow>>;

    /// Replaces an account's password hash (a rehash with new parameters).
    fn set_password_hash<'a>(&'a self, id: &'a str, hash: &'a str) -> Fut<'a, ()>;

    /// Sets the role of the account with this email; `false` when there is none.
    fn set_role<'a>(&'a self, email: &'a str, role: &'a str) -> Fut<'a, bool>;
}
