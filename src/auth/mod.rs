//! API tokens: short-lived JWT access tokens and rotating refresh tokens with reuse detection.
//!
//! A sign-in issues a pair; the refresh token is exchanged for a new pair, once: its row is
//! marked used and a successor joins the same family. Presenting a used token again means a
//! copy exists somewhere (RFC 9700 §4.14.2), so its whole family is revoked and the newest
//! token stops working too. Signing out revokes the family.

mod access;
mod bearer;
mod hs256;
mod refresh;
mod signed_url;

use std::time::Duration;

use serde::Serialize;

pub(crate) use access::{Claims, Rejection};
pub(crate) use bearer::{BearerClaims, bearer_token};
pub(crate) use signed_url::{STREAM_URL_TTL, UrlSigner};

use crate::config::Config;
use crate::db::Db;
use crate::db::refresh_tokens::RefreshToken;
use crate::error::AppError;

/// Issues, verifies, rotates and revokes the API's tokens.
pub(crate) struct Tokens {
    access: access::AccessKeys,
    refresh_ttl: Duration,
    db: Db,
    stream_urls: UrlSigner,
}

/// What a sign-in or a refresh answers.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenPair {
    /// The JWT for `Authorization: Bearer`.
    pub(crate) access_token: String,
    /// Always `Bearer`.
    pub(crate) token_type: &'static str,
    /// Seconds the access token is valid for.
    pub(crate) expires_in: u64,
    /// The opaque token for `POST /api/auth/refresh`, good once.
    pub(crate) refresh_token: String,
    /// Seconds the refresh token is valid for.
    pub(crate) refresh_expires_in: u64,
}

impl Tokens {
    /// The token service of `config`'s secret and lifetimes.
    pub(crate) fn new(config: &Config, db: Db) -> anyhow::Result<Self> {
        let secret = config.secret.as_ref().ok_or_else(|| anyhow::anyhow!("the server secret is not set"))?;
        Ok(Self {
            access: access::AccessKeys::new(secret, &config.auth),
            refresh_ttl: config.auth.refresh_ttl,
            db,
            stream_urls: UrlSigner::new(secret),
        })
    }

    /// The signer of expiring stream URLs (private videos).
    pub(crate) fn stream_urls(&self) -> &UrlSigner {
        &self.stream_urls
    }

    /// A new pair for `user_id`, the first of a new family (a sign-in).
    pub(crate) async fn issue_pair(&self, user_id: &str) -> Result<TokenPair, AppError> {
        let family = crate::id::random_id::<12>();
        let (row, token) = self.new_refresh(&family, user_id);
        self.db.refresh_tokens().insert(&row).await?;
        Ok(self.pair(user_id, token))
    }

    /// Exchanges `refresh_token` for a new pair in the same family. A token used before revokes
    /// its family and is refused, as are unknown, expired and revoked ones.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AppError> {
        let old = self.find(refresh_token).await?;
        let now = crate::db::now_secs();
        if old.revoked_at.is_some() {
            return Err(unauthorized("the refresh token was revoked; sign in again"));
        }
        if old.used_at.is_some() {
            return Err(self.reused(&old, now).await);
        }
        if old.expires_at <= now {
            return Err(unauthorized("the refresh token has expired; sign in again"));
        }
        let (next, token) = self.new_refresh(&old.family_id, &old.user_id);
        if !self.db.refresh_tokens().rotate(&old.id, &next, now).await? {
            // Another request used it between our read and our write: the same reuse.
            return Err(self.reused(&old, now).await);
        }
        Ok(self.pair(&old.user_id, token))
    }

    /// Revokes the family of `refresh_token` (signing out); a family already revoked is fine.
    pub(crate) async fn revoke(&self, refresh_token: &str) -> Result<(), AppError> {
        let token = self.find(refresh_token).await?;
        self.db.refresh_tokens().revoke_family(&token.family_id, crate::db::now_secs()).await?;
        Ok(())
    }

    /// The claims of a valid access token.
    pub(crate) fn verify(&self, access_token: &str) -> Result<Claims, Rejection> {
        self.access.verify(access_token)
    }

    /// Test routes only: see [`access::AccessKeys::sign_raw`].
    #[cfg(feature = "test-routes")]
    pub(crate) fn sign_raw(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        self.access.sign_raw(header, claims)
    }

    async fn find(&self, refresh_token: &str) -> Result<RefreshToken, AppError> {
        let unknown = || unauthorized("the refresh token is unknown");
        if !refresh::well_formed(refresh_token) {
            return Err(unknown());
        }
        self.db.refresh_tokens().find_by_hash(&refresh::hash(refresh_token)).await?.ok_or_else(unknown)
    }

    /// Revokes the family of a token presented twice, and the error that says so.
    async fn reused(&self, token: &RefreshToken, now: i64) -> AppError {
        match self.db.refresh_tokens().revoke_family(&token.family_id, now).await {
            Ok(revoked) => {
                tracing::warn!(user = %token.user_id, family = %token.family_id, revoked, "refresh token reused; family revoked");
                unauthorized("the refresh token was already used; every token of this sign-in is revoked")
            }
            Err(error) => error.into(),
        }
    }

    fn new_refresh(&self, family: &str, user_id: &str) -> (RefreshToken, String) {
        let token = refresh::generate();
        let now = crate::db::now_secs();
        let ttl = i64::try_from(self.refresh_ttl.as_secs()).unwrap_or(i64::MAX);
        let row = RefreshToken {
            id: crate::id::random_id::<12>(),
            family_id: family.to_owned(),
            user_id: user_id.to_owned(),
            token_hash: refresh::hash(&token),
            created_at: now,
            expires_at: now.saturating_add(ttl),
            used_at: None,
            revoked_at: None,
        };
        (row, token)
    }

    fn pair(&self, user_id: &str, refresh_token: String) -> TokenPair {
        TokenPair {
            access_token: self.access.issue(user_id),
            token_type: "Bearer",
            expires_in: self.access.ttl().as_secs(),
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        }
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::Unauthorized(message.to_owned())
}
