//! The `account_tokens` table: hashes of the single-use links mailed to an account (email
//! verification, password reset).

use super::{Fut, Tx};

/// What a link is for; stored as `verify` or `reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Proves the account's email address.
    Verify,
    /// Sets a new password.
    Reset,
}

impl Purpose {
    /// The name in the `purpose` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// A link's token as stored (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountToken {
    /// Lowercase hex BLAKE3 of the token.
    pub(crate) token_hash: String,
    /// Whose account the link acts on.
    pub(crate) user_id: String,
    /// `verify` or `reset`.
    pub(crate) purpose: String,
    /// Milliseconds since the epoch.
    pub(crate) created_at: i64,
    /// Milliseconds since the epoch; from then on the link does nothing.
    pub(crate) expires_at: i64,
    /// When it was spent, or retired by a newer link (ms).
    pub(crate) used_at: Option<i64>,
}

/// The `account_tokens` repository.
pub(crate) trait AccountTokens {
    /// Stores `token` inside the caller's transaction (with the mail that carries it), retiring
    /// the user's unspent tokens of the same purpose.
    fn replace_in<'a>(&'a self, tx: &'a mut Tx, token: &'a AccountToken) -> Fut<'a, ()>;

    /// The token with this hash, spent or not.
    fn find<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<AccountToken>>;

    /// When the user's newest unspent, unexpired token of `purpose` was made (ms), if any.
    fn outstanding_since<'a>(&'a self, user_id: &'a str, purpose: Purpose, now: i64) -> Fut<'a, Option<i64>>;

    /// Spends the token inside the caller's transaction if it is of `purpose`, unspent and
    /// unexpired at `now`; returns its user id, or `None` when it was not (a concurrent use got
    /// there first).
    fn spend_in<'a>(
        &'a self,
        tx: &'a mut Tx,
        token_hash: &'a str,
        purpose: Purpose,
        now: i64,
    ) -> Fut<'a, Option<String>>;
}
