//! The `[auth]` and `[mail]` sections: API token lifetimes and names, and how mail leaves.

use std::time::Duration;

use anyhow::bail;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// API tokens: JWT access tokens and the opaque refresh tokens that renew them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    /// How long an access token is accepted.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// How long a refresh token may wait to be used; each use issues a new one.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// The `iss` claim kino writes and requires.
    pub issuer: String,
    /// The `aud` claim kino writes and requires.
    pub audience: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            // Short enough that a leaked token soon stops working; refresh covers the rest.
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            issuer: "kino".to_owned(),
            audience: "kino-api".to_owned(),
        }
    }
}

impl AuthConfig {
    /// Refuses lifetimes that make no sense and empty names.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.access_ttl < Duration::from_secs(1) || self.access_ttl > Duration::from_secs(24 * 3600) {
            bail!("auth.access_ttl must be between 1s and 24h");
        }
        if self.refresh_ttl <= self.access_ttl {
            bail!("auth.refresh_ttl must be longer than auth.access_ttl");
        }
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            bail!("auth.issuer and auth.audience must not be empty");
        }
        Ok(())
    }
}

/// How mail leaves the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// `.eml` files under `<data_dir>/mail/`, so development needs no mail server.
    File,
    /// An SMTP relay (`mail.smtp_*`).
    Smtp,
}

/// Outgoing mail: the sender, the transport and its timeouts, and the retry schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailConfig {
    /// Where mail goes: `file` or `smtp`.
    pub transport: MailTransport,
    /// The `From` address, e.g. `kino <kino@example.org>`.
    pub from: String,
    /// The SMTP relay's host name.
    pub smtp_host: Option<String>,
    /// The SMTP relay's port (587 is submission with STARTTLS).
    pub smtp_port: u16,
    /// The SMTP user, if the relay wants one.
    pub smtp_username: Option<String>,
    /// The SMTP password, plain or encrypted with `kino secret encrypt` (`v1.…`); never logged.
    #[serde(
        default,
        serialize_with = "super::secret::serialize_redacted",
        deserialize_with = "super::secret::deserialize"
    )]
    pub smtp_password: Option<SecretString>,
    /// Upgrade the connection with STARTTLS before anything else is said (refused without it);
    /// `false` speaks plain SMTP, for a relay on the same host.
    pub smtp_starttls: bool,
    /// Time allowed to connect, and for each reply of the relay.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for one whole delivery, from connecting to the relay's last reply.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// The wait before the first retry; it doubles with each failure, up to an hour.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Deliveries tried before a message is given up (it stays in the outbox with its error).
    pub max_attempts: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "kino <kino@localhost>".to_owned(),
            smtp_host: None,
            smtp_port: 587,
            smtp_username: None,
            smtp_password: None,
            smtp_starttls: true,
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            // 30 s, 1 min, 2 min … 1 h: eight tries span about two hours of a relay outage.
            retry_backoff: Duration::from_secs(30),
            max_attempts: 8,
        }
    }
}

impl MailConfig {
    /// Refuses an SMTP transport without a host, a sender that is no address, zero timeouts.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.transport == MailTransport::Smtp && self.smtp_host.as_deref().is_none_or(str::is_empty) {
            bail!("mail.transport = \"smtp\" needs mail.smtp_host (KINO_MAIL_SMTP_HOST)");
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!("mail.from {:?} is not an address like `kino <kino@example.org>`", self.from);
        }
        if self.connect_timeout.is_zero() || self.send_timeout.is_zero() {
            bail!("mail.connect_timeout and mail.send_timeout must be longer than 0s");
        }
        if self.max_attempts == 0 {
            bail!("mail.max_attempts must be at least 1");
        }
        Ok(())
    }
}
