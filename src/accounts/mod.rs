//! Accounts: users, roles and passwords (argon2id), and who is signed in on a request.
//!
//! [`Accounts`] is the one service the routes, the CLI and the token endpoint call:
//! [`Accounts::sign_up`], [`Accounts::authenticate`], [`Accounts::get`], and the mailed links
//! ([`link`]) that verify an email or reset a password. The session keeps only the user id
//! ([`session`]); the extractors [`CurrentUser`] and [`MaybeUser`] turn it back into a [`User`]
//! per request.

pub(crate) mod link;
pub(crate) mod password;
pub(crate) mod session;
pub(crate) mod store;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;

pub(crate) use self::link::LinkError;
use self::password::Hasher;
pub(crate) use self::session::{CurrentUser, MaybeUser, Uploader};
use crate::config::AccountsConfig;
use crate::db::account_tokens::{AccountToken, Purpose};
use crate::db::users::{NewUser, UserRow};
use crate::db::videos::{Video, Visibility};
use crate::db::{Db, Tx, now_ms, now_secs};
use crate::error::{AppError, Throttle};
use crate::mail::MailQueue;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Everything, including other people's media; the first account is one.
    Admin,
    /// May upload (and, in part 2, edit and delete their own uploads).
    Uploader,
    /// May watch; every account made by sign-up after the first.
    Viewer,
}

impl Role {
    /// The name stored in the database and shown in the API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Uploader => "uploader",
            Self::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "admin" => Ok(Self::Admin),
            "uploader" => Ok(Self::Uploader),
            "viewer" => Ok(Self::Viewer),
            other => Err(format!("{other:?} is not a role: admin, uploader or viewer")),
        }
    }
}

/// A signed-up person, as the rest of kino sees them (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct User {
    /// Random short id.
    pub(crate) id: String,
    /// The sign-in email.
    pub(crate) email: String,
    /// The name shown in the header.
    pub(crate) display_name: String,
    /// What they may do.
    pub(crate) role: Role,
    /// Whether the email address was verified (the link of the sign-up mail was opened).
    pub(crate) email_verified: bool,
    /// When a password reset last set the password (seconds): access tokens issued before it
    /// speak for nobody. Not shown in the API.
    #[serde(skip)]
    pub(crate) password_changed_at: Option<i64>,
}

impl User {
    /// Whether they may upload: uploaders and admins.
    pub(crate) fn may_upload(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Uploader)
    }

    /// Whether they may edit or delete something owned by `owner`: its owner, or an admin. Media
    /// owned by no one (found in the media roots) is the admins' alone.
    pub(crate) fn may_manage(&self, owner: Option<&str>) -> bool {
        self.role == Role::Admin || owner == Some(self.id.as_str())
    }
}

/// Whether `user` (`None`: nobody signed in) may see `video` at all: a public or unlisted one
/// anyone may, a private one only its owner and admins. Everyone else is answered as if it did
/// not exist.
pub(crate) fn may_see(user: Option<&User>, video: &Video) -> bool {
    video.visibility != Visibility::Private || user.is_some_and(|u| u.may_manage(video.owner_id()))
}

impl TryFrom<UserRow> for User {
    type Error = anyhow::Error;

    fn try_from(row: UserRow) -> anyhow::Result<Self> {
        // The CHECK constraint keeps the column to the three names: anything else is a bug.
        let role = row.role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        Ok(Self {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            role,
            email_verified: row.email_verified_at.is_some(),
            password_changed_at: row.password_changed_at,
        })
    }
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccountError {
    /// The email belongs to an account already.
    #[error("email: an account with this address exists already; sign in instead")]
    EmailTaken,
    /// A field is invalid: `field: reason`.
    #[error("{0}")]
    Invalid(String),
    /// Unknown email or wrong password: one message for both, so it tells nothing.
    #[error("wrong email or password")]
    WrongCredentials,
    /// A mailed link that does nothing; the inner error says why.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A verification mail was asked for an address verified already.
    #[error("the email address is verified already")]
    AlreadyVerified,
    /// A link of this kind was mailed moments ago; another may be asked for after the wait.
    #[error("a link was mailed moments ago; ask again in {} s", .0.as_secs().max(1))]
    TooSoon(Duration),
    /// The database or the hashing pool failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AccountError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(error).context("database"))
    }
}

impl From<AccountError> for AppError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::EmailTaken => AppError::Conflict(error.to_string()),
            AccountError::Invalid(message) => AppError::Unprocessable(message),
            AccountError::WrongCredentials => AppError::Unauthorized(error.to_string()),
            AccountError::Link(_) => AppError::BadRequest(error.to_string()),
            AccountError::AlreadyVerified => AppError::Conflict(error.to_string()),
            AccountError::TooSoon(wait) => AppError::TooManyRequests(Throttle {
                policy: "verification mail",
                quota: 1,
                window: RESEND_INTERVAL,
                retry_after: wait,
            }),
            AccountError::Internal(cause) => AppError::Internal(cause),
        }
    }
}

/// Longest display name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest email (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;
/// Password hashes computed at once: each holds 19 MiB and a blocking thread for ~50 ms, so a
/// burst of sign-ins queues here instead of taking the memory of hundreds.
const CONCURRENT_HASHES: usize = 4;
/// The shortest wait between two mails of one kind to one account: enough to stop a script
/// from filling a mailbox, short enough for a person whose first mail went astray.
const RESEND_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The accounts service: sign-up, sign-in, lookups, roles, verification and reset links.
#[derive(Debug)]
pub(crate) struct Accounts {
    db: Db,
    hasher: Hasher,
    hashing: Semaphore,
    /// A hash of nothing anyone knows, verified when the email is unknown so that answer takes
    /// as long as a wrong password.
    decoy: OnceLock<String>,
    /// Woken after a transaction that queued mail commits.
    mail: MailQueue,
    verify_ttl: Duration,
    reset_ttl: Duration,
}

impl Accounts {
    /// The service over `db`, hashing with OWASP's argon2id parameters; its mail wakes `mail`.
    pub(crate) fn new(db: Db, config: &AccountsConfig, mail: MailQueue) -> Self {
        Self::with_hasher(db, config, mail, Hasher::default())
    }

    /// The service with other hashing parameters.
    pub(crate) fn with_hasher(db: Db, config: &AccountsConfig, mail: MailQueue, hasher: Hasher) -> Self {
        Self {
            db,
            hasher,
            hashing: Semaphore::new(CONCURRENT_HASHES),
            decoy: OnceLock::new(),
            mail,
            verify_ttl: config.verify_ttl,
            reset_ttl: config.reset_ttl,
        }
    }

    /// Creates an account. `role: None` applies the first-account rule: the first account is
    /// admin, later ones viewers. With `link_base` (the site's origin, `http://localhost:8080`)
    /// the verification mail is queued in the same transaction as the account, so there is
    /// never one without the other; without it (the command line) no mail is sent.
    pub(crate) async fn sign_up(
        self: &Arc<Self>,
        email: &str,
        password: &str,
        display_name: Option<&str>,
        role: Option<Role>,
        link_base: Option<&str>,
    ) -> Result<User, AccountError> {
        let email = parse_email(email)?;
        password::check_strength(password, email)
            .map_err(|e| AccountError::Invalid(format!("password: {e}")))?;
        let name = parse_name(display_name, email)?;
        let hash = self.hash(password).await?;
        let id = crate::id::random_id::<9>();
        let row = NewUser {
            id: &id,
            email,
            display_name: &name,
            password_hash: &hash,
            role: role.map(Role::as_str),
            created_at: crate::db::now_secs(),
        };
        let mut tx = self.db.begin().await?;
        let row = self.db.users().insert_in(&mut tx, &row).await?.ok_or(AccountError::EmailTaken)?;
        let user = User::try_from(row)?;
        if let Some(base) = link_base {
            self.mail_link_in(&mut tx, &user, Purpose::Verify, base).await?;
        }
        tx.commit().await?;
        if link_base.is_some() {
            self.mail.wake();
        }
        Ok(user)
    }

    /// Mails `user` a new verification link (the old one stops working). Refused when the
    /// address is verified already, or when a link went out less than [`RESEND_INTERVAL`] ago.
    pub(crate) async fn resend_verification(&self, user: &User, link_base: &str) -> Result<(), AccountError> {
        if user.email_verified {
            return Err(AccountError::AlreadyVerified);
        }
        if let Some(wait) = self.resend_wait(&user.id, Purpose::Verify).await? {
            return Err(AccountError::TooSoon(wait));
        }
        self.mail_link(user, Purpose::Verify, link_base).await
    }

    /// Spends a verification link: the account's email is verified from now on.
    pub(crate) async fn verify_email(&self, token: &str) -> Result<User, AccountError> {
        let (hash, user_id) = self.open_link(token, Purpose::Verify).await?;
        let mut tx = self.db.begin().await?;
        self.spend_in(&mut tx, &hash, Purpose::Verify).await?;
        self.db.users().mark_verified_in(&mut tx, &user_id, now_secs()).await?;
        tx.commit().await?;
        self.get(&user_id).await?.ok_or(AccountError::Link(LinkError::Unknown))
    }

    /// Mails a password reset link to the account with `email`, if there is one; the answer is
    /// the same either way. Work that depends on the account (the lookup, the mail) should run
    /// apart from the request, so the answer's timing tells nothing either (`routes::account`).
    /// A second request within [`RESEND_INTERVAL`] sends nothing more.
    pub(crate) async fn request_reset(&self, email: &str, link_base: &str) -> Result<(), AccountError> {
        let Some(row) = self.db.users().find_by_email(parse_email(email)?).await? else {
            tracing::info!("password reset asked for an unknown address");
            return Ok(());
        };
        let user = User::try_from(row)?;
        if self.resend_wait(&user.id, Purpose::Reset).await?.is_some() {
            tracing::info!(user = %user.id, "password reset asked again within the resend interval; no mail");
            return Ok(());
        }
        self.mail_link(&user, Purpose::Reset, link_base).await
    }

    /// The account a reset link would act on, if the link still works (the reset form's check).
    pub(crate) async fn reset_link_user(&self, token: &str) -> Result<User, AccountError> {
        let (_, user_id) = self.open_link(token, Purpose::Reset).await?;
        self.get(&user_id).await?.ok_or(AccountError::Link(LinkError::Unknown))
    }

    /// Spends a reset link: the account gets `password` (under the sign-up rules), and every
    /// session and refresh token it had ends, in one transaction.
    pub(crate) async fn reset_password(
        self: &Arc<Self>,
        token: &str,
        password: &str,
    ) -> Result<User, AccountError> {
        let (hash, user_id) = self.open_link(token, Purpose::Reset).await?;
        let user = self.get(&user_id).await?.ok_or(AccountError::Link(LinkError::Unknown))?;
        password::check_strength(password, &user.email)
            .map_err(|e| AccountError::Invalid(format!("password: {e}")))?;
        // Hashed before the transaction: ~50 ms that would otherwise hold SQLite's write lock.
        let password_hash = self.hash(password).await?;
        let mut tx = self.db.begin().await?;
        self.spend_in(&mut tx, &hash, Purpose::Reset).await?;
        self.db.users().set_password_hash_in(&mut tx, &user.id, &password_hash, now_secs()).await?;
        let sessions = self.db.sessions().delete_user_in(&mut tx, &user.id).await?;
        let refresh = self.db.refresh_tokens().revoke_user_in(&mut tx, &user.id, now_secs()).await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, sessions, refresh, "password reset; sessions ended, refresh tokens revoked");
        Ok(user)
    }

    /// The stored link of `token` if it works for `purpose`: its hash and its user id.
    async fn open_link(&self, token: &str, purpose: Purpose) -> Result<(String, String), AccountError> {
        let token = token.trim();
        if !link::well_formed(token) {
            return Err(LinkError::Unknown.into());
        }
        let hash = link::hash(token);
        let stored = self.db.account_tokens().find(&hash).await?.ok_or(LinkError::Unknown)?;
        link::check(&stored, purpose, now_ms())?;
        Ok((hash, stored.user_id))
    }

    /// Spends the link of `hash` in `tx`; refused as used when a concurrent use got there first.
    async fn spend_in(&self, tx: &mut Tx, hash: &str, purpose: Purpose) -> Result<(), AccountError> {
        let spent = self.db.account_tokens().spend_in(tx, hash, purpose, now_ms()).await?;
        spent.map(drop).ok_or(AccountError::Link(LinkError::Used))
    }

    /// How long until another link of `purpose` may be mailed to `user_id`; `None`: now.
    async fn resend_wait(&self, user_id: &str, purpose: Purpose) -> Result<Option<Duration>, AccountError> {
        let now = now_ms();
        let Some(since) = self.db.account_tokens().outstanding_since(user_id, purpose, now).await? else {
            return Ok(None);
        };
        let next = since.saturating_add(i64::try_from(RESEND_INTERVAL.as_millis()).unwrap_or(i64::MAX));
        Ok((next > now).then(|| Duration::from_millis(u64::try_from(next - now).unwrap_or(0))))
    }

    /// Queues a new link of `purpose` for `user` in a transaction of its own, then wakes the sender.
    async fn mail_link(&self, user: &User, purpose: Purpose, link_base: &str) -> Result<(), AccountError> {
        let mut tx = self.db.begin().await?;
        self.mail_link_in(&mut tx, user, purpose, link_base).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    /// Stores a new token of `purpose` for `user` (retiring the unspent ones) and queues the
    /// mail carrying its link, both in `tx`.
    async fn mail_link_in(
        &self,
        tx: &mut Tx,
        user: &User,
        purpose: Purpose,
        link_base: &str,
    ) -> Result<(), AccountError> {
        let ttl = match purpose {
            Purpose::Verify => self.verify_ttl,
            Purpose::Reset => self.reset_ttl,
        };
        let token = link::generate();
        let now = now_ms();
        let row = AccountToken {
            token_hash: link::hash(&token),
            user_id: user.id.clone(),
            purpose: purpose.as_str().to_owned(),
            created_at: now,
            expires_at: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            used_at: None,
        };
        self.db.account_tokens().replace_in(tx, &row).await?;
        let url = format!("{}{}?token={token}", link_base.trim_end_matches('/'), link::path(purpose));
        let mail = link::mail(purpose, &user.email, &user.display_name, &url, ttl);
        self.db.outbox().enqueue_in(tx, &mail).await?;
        Ok(())
    }

    /// The account with this email and password. Unknown emails cost a hash verification too,
    /// and both failures read the same. A hash made with other parameters is redone.
    pub(crate) async fn authenticate(
        self: &Arc<Self>,
        email: &str,
        password: &str,
    ) -> Result<User, AccountError> {
        let row = self.db.users().find_by_email(email.trim()).await?;
        let Some(row) = row else {
            let this = self.clone();
            let password = password.to_owned();
            self.blocking(move || {
                let decoy = this.decoy.get_or_init(|| this.hasher.hash(&crate::id::random_id::<16>()));
                this.hasher.verify(&password, decoy)
            })
            .await?;
            return Err(AccountError::WrongCredentials);
        };
        let (hasher, phc, given) = (self.hasher.clone(), row.password_hash.clone(), password.to_owned());
        if !self.blocking(move || hasher.verify(&given, &phc)).await? {
            return Err(AccountError::WrongCredentials);
        }
        if self.hasher.needs_rehash(&row.password_hash) {
            let hash = self.hash(password).await?;
            // The sign-in stands whether or not the new hash is written; the next one retries.
            if let Err(error) = self.db.users().set_password_hash(&row.id, &hash).await {
                tracing::warn!(error = %error, "rehashing a password failed");
            }
        }
        Ok(User::try_from(row)?)
    }

    /// The account with this id.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<User>, AccountError> {
        match self.db.users().find(id).await? {
            Some(row) => Ok(Some(User::try_from(row)?)),
            None => Ok(None),
        }
    }

    /// Gives the account with this email another role; `false` when there is no such account.
    pub(crate) async fn set_role(&self, email: &str, role: Role) -> Result<bool, AccountError> {
        Ok(self.db.users().set_role(email.trim(), role.as_str()).await?)
    }

    async fn hash(self: &Arc<Self>, password: &str) -> Result<String, AccountError> {
        let (hasher, password) = (self.hasher.clone(), password.to_owned());
        self.blocking(move || hasher.hash(&password)).await
    }

    /// Runs a hash computation on the blocking pool, at most [`CONCURRENT_HASHES`] at once.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let _permit = self.hashing.acquire().await.map_err(|e| anyhow::anyhow!("hashing closed: {e}"))?;
        Ok(tokio::task::spawn_blocking(work).await.map_err(|e| anyhow::anyhow!("hashing panicked: {e}"))?)
    }
}

/// A trimmed email with one `@`, something on both sides and a dot in the domain; the real
/// proof is the verification mail.
pub(crate) fn parse_email(email: &str) -> Result<&str, AccountError> {
    let email = email.trim();
    let invalid = |why: &str| AccountError::Invalid(format!("email: {why}"));
    if email.is_empty() {
        return Err(invalid("required"));
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid("must be at most 254 characters"));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(email)
        }
        _ => Err(invalid("is not an address like name@example.org")),
    }
}

/// The display name given, trimmed, or the email's local part when none is.
fn parse_name(name: Option<&str>, email: &str) -> Result<String, AccountError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email));
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AccountError::Invalid(format!(
            "display_name: must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accounts(dir: &std::path::Path, hasher: Hasher) -> Arc<Accounts> {
        let db = Db::open(dir).await.unwrap();
        Arc::new(Accounts::with_hasher(db, &AccountsConfig::default(), MailQueue::default(), hasher))
    }

    #[tokio::test]
    async fn sign_in_rehashes_a_password_hashed_with_old_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let old = accounts(dir.path(), Hasher::new(argon2::Params::new(1024, 1, 1, None).unwrap())).await;
        let user = old.sign_up("ada@example.org", "analytical engine", None, None, None).await.unwrap();
        let stored = |a: &Arc<Accounts>| {
            let (db, id) = (a.db.clone(), user.id.clone());
            async move { db.users().find(&id).await.unwrap().unwrap().password_hash }
        };
        assert!(stored(&old).await.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));

        let current =
            Arc::new(Accounts::new(old.db.clone(), &AccountsConfig::default(), MailQueue::default()));
        assert!(matches!(
            current.authenticate("ada@example.org", "analytical engin").await,
            Err(AccountError::WrongCredentials)
        ));
        assert!(
            stored(&current).await.starts_with("$argon2id$v=19$m=1024,"),
            "no rehash on a wrong password"
        );
        assert_eq!(current.authenticate("ADA@example.org", "analytical engine").await.unwrap(), user);
        let rehashed = stored(&current).await;
        assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{rehashed}");
        assert_eq!(current.authenticate("ada@example.org", "analytical engine").await.unwrap().id, user.id);
    }

    #[tokio::test]
    async fn the_first_account_is_admin_and_emails_are_unique_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let accounts =
            accounts(dir.path(), Hasher::new(argon2::Params::new(1024, 1, 1, None).unwrap())).await;
        let first = accounts
            .sign_up(" first@example.org ", "first password", Some("First"), None, None)
            .await
            .unwrap();
        assert_eq!(
            (first.role, first.email.as_str(), first.display_name.as_str()),
            (Role::Admin, "first@example.org", "First")
        );
        let second =
            accounts.sign_up("second@example.org", "second password", None, None, None).await.unwrap();
        assert_eq!((second.role, second.display_name.as_str()), (Role::Viewer, "second"));
        let again = accounts.sign_up("FIRST@example.org", "another password", None, None, None).await;
        assert!(matches!(again, Err(AccountError::EmailTaken)), "{again:?}");
        for bad in ["", "no-at-sign", "a@nodot", "a b@example.org", "@example.org"] {
            let error = accounts.sign_up(bad, "a fine password", None, None, None).await.unwrap_err();
            assert!(error.to_string().starts_with("email: "), "{bad:?}: {error}");
        }
        assert!(accounts.set_role("Second@example.org", Role::Uploader).await.unwrap());
        assert_eq!(accounts.get(&second.id).await.unwrap().unwrap().role, Role::Uploader);
        assert!(!accounts.set_role("nobody@example.org", Role::Admin).await.unwrap());
    }

    #[tokio::test]
    async fn a_sign_up_and_its_verification_mail_commit_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let accounts =
            accounts(dir.path(), Hasher::new(argon2::Params::new(1024, 1, 1, None).unwrap())).await;
        let base = Some("http://localhost:8080/");
        let ada = accounts.sign_up("ada@example.org", "a fine password", None, None, base).await.unwrap();
        let taken = accounts.sign_up("ADA@example.org", "a fine password", None, None, base).await;
        assert!(matches!(taken, Err(AccountError::EmailTaken)), "{taken:?}");
        accounts.sign_up("cli@example.org", "a fine password", None, None, None).await.unwrap();
        let queued = accounts.db.outbox().due(i64::MAX, 8, 10).await.unwrap();
        assert_eq!(queued.len(), 1, "one mail: none for the refused sign-up, none without a link base");
        assert_eq!(
            (queued[0].kind.as_str(), queued[0].to_addr.as_str()),
            ("verify_email", "ada@example.org")
        );
        let link = queued[0].body_text.split_whitespace().find(|w| w.starts_with("http")).unwrap();
        let token = link.strip_prefix("http://localhost:8080/account/verify?token=").expect(link);
        assert_eq!(
            accounts.db.account_tokens().find(&link::hash(token)).await.unwrap().unwrap().user_id,
            ada.id
        );
        assert!(accounts.db.account_tokens().find(token).await.unwrap().is_none(), "only the hash is kept");

        assert!(accounts.verify_email(token).await.unwrap().email_verified);
        assert!(matches!(accounts.verify_email(token).await, Err(AccountError::Link(LinkError::Used))));
        let verified = accounts.get(&ada.id).await.unwrap().unwrap();
        assert!(matches!(
            accounts.resend_verification(&verified, "http://localhost:8080").await,
            Err(AccountError::AlreadyVerified)
        ));
    }
}
