//! JWT access tokens: HS256 under a key derived from the server secret, with `kid`, and
//! verification that pins the algorithm, the key, the audience and the issuer.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// The HKDF label of the token key.
const LABEL: &str = "kino/jwt/hs256/v1";

/// Clock skew allowed on `exp` and `nbf`, seconds: small, as tokens live 15 minutes.
const LEEWAY_SECS: u64 = 5;

/// Longer tokens are refused before any parsing; kino's own are ~350 bytes.
const MAX_TOKEN_LEN: usize = 4096;

/// The claims of a kino access token; every one is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user id.
    pub(crate) sub: String,
    /// `auth.audience`.
    pub(crate) aud: String,
    /// `auth.issuer`.
    pub(crate) iss: String,
    /// Expiry, seconds since the epoch.
    pub(crate) exp: u64,
    /// Not before, seconds since the epoch.
    pub(crate) nbf: u64,
    /// Issued at, seconds since the epoch.
    pub(crate) iat: u64,
    /// A random id of this token.
    pub(crate) jti: String,
}

/// Why an access token is refused: each is a 401 whose message says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// Not three base64url parts of JSON, or the claims are not kino's.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` is not HS256 (`none`, RS256, …).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// `kid` is missing or names no key of this server.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The header names a key to fetch or embeds one (`jku`, `x5u`, `jwk`, `x5c`) or has `crit`.
    #[error("the token's header names a key source, which is never followed")]
    KeySource,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` is not this API.
    #[error("the token is for another audience")]
    Audience,
    /// `iss` is not this server.
    #[error("the token is from another issuer")]
    Issuer,
    /// A required claim is missing or of the wrong type.
    #[error("the token lacks a required claim or has one of the wrong type")]
    MissingClaim,
}

/// The signing key and the rules of verification.
pub(crate) struct AccessKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl AccessKeys {
    /// Derives the key from `secret`; its `kid` is a hash of the key, so a new secret is a new
    /// `kid` and old tokens are refused as unknown, not as forged.
    pub(crate) fn new(secret: &SecretString, config: &AuthConfig) -> Self {
        super::hs256::install();
        let key = crate::config::derive_key(secret, LABEL);
        let digest = ring::digest::digest(&ring::digest::SHA256, &key);
        let kid = format!(
            "hs256-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..9])
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.set_audience(&[&config.audience]);
        validation.set_issuer(&[&config.issuer]);
        Self {
            kid,
            encoding: EncodingKey::from_secret(&key).expect("a 32-byte key is not empty"),
            decoding: DecodingKey::from_secret(&key).expect("a 32-byte key is not empty"),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.access_ttl,
        }
    }

    /// How long an issued token lives.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A signed token for `user_id`, valid from now for the configured lifetime.
    pub(crate) fn issue(&self, user_id: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp: now + self.ttl.as_secs(),
            nbf: now,
            iat: now,
            jti: crate::id::random_id::<16>(),
        };
        self.sign(&claims)
    }

    /// `claims` signed under this key, with its `kid`.
    fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("HS256 signs any claims")
    }

    /// The claims of `token`, if this server issued it, unchanged, for this API, and in date.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        // The header is checked on its own first, so that no key source it names is ever
        // looked at and the error says what was wrong; `alg` before anything else, as JSON,
        // since jsonwebtoken cannot even parse a header saying `none`.
        let head = token.split('.').next().unwrap_or("");
        let head: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(head)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Rejection::Malformed)?;
        if head.get("alg").and_then(serde_json::Value::as_str) != Some("HS256") {
            return Err(Rejection::Algorithm);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(Rejection::KeySource);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(Rejection::UnknownKey);
        }
        // Decoded as JSON first, so a missing `exp` is reported as such by the validation
        // rather than as a claims struct that does not parse.
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => Rejection::Signature,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidAudience => Rejection::Audience,
                ErrorKind::InvalidIssuer => Rejection::Issuer,
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                    Rejection::MissingClaim
                }
                ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                _ => Rejection::Malformed,
            })?;
        serde_json::from_value(data.claims).map_err(|_| Rejection::MissingClaim)
    }

    /// Test routes only: `header` and `claims` as given (the real `kid` added when the header has
    /// none), HMAC'd with the real key, so tests can make tokens that are correctly signed and
    /// wrong in every other way.
    #[cfg(feature = "test-routes")]
    pub(crate) fn sign_raw(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Without a `kid` of its own, the header gets the real one.
        let mut header = header.clone();
        if let Some(object) = header.as_object_mut() {
            object.entry("kid").or_insert_with(|| self.kid.clone().into());
        }
        let message = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.encoding.as_bytes());
        let tag = ring::hmac::sign(&key, message.as_bytes());
        format!("{message}.{}", b64.encode(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AccessKeys {
        AccessKeys::new(&SecretString::from("test-secret-test-secret-test-secret"), &AuthConfig::default())
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let keys = keys();
        let token = keys.issue("user-1");
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.aud.as_str(), claims.iss.as_str()),
            ("user-1", "kino-api", "kino")
        );
        assert_eq!(claims.exp - claims.iat, 15 * 60);
        assert_eq!(claims.nbf, claims.iat);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(keys.kid.as_str()));
        assert_ne!(keys.issue("user-1"), token, "each token has its own jti");
    }

    #[test]
    fn another_secret_is_another_kid_and_its_tokens_are_unknown() {
        let other =
            AccessKeys::new(&SecretString::from("another-secret-another-secret-xx"), &AuthConfig::default());
        assert_ne!(other.kid, keys().kid);
        assert_eq!(keys().verify(&other.issue("u")), Err(Rejection::UnknownKey));
    }

    #[test]
    fn too_long_tokens_are_refused_unparsed() {
        assert_eq!(keys().verify(&"a".repeat(MAX_TOKEN_LEN + 1)), Err(Rejection::Malformed));
    }
}
