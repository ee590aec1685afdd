//! Signed expiring stream URLs: `?exp=<unix seconds>&sig=<base64url HMAC-SHA256("{id}:{exp}")>`
//! under a key derived from the server secret, so a `<video src>` plays a private video without
//! cookies, and a link handed on stops working at `exp`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use secrecy::SecretString;

/// The HKDF label of the key: its own, so a stream signature is never a valid token elsewhere.
const LABEL: &str = "kino/stream-url";

/// How long a signed stream URL the API or a page hands out stays valid: a long film watched
/// with pauses, without a link that works for days once copied.
pub(crate) const STREAM_URL_TTL: Duration = Duration::from_secs(6 * 3600);

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    /// `exp` is in the past.
    #[error("the signed link has expired; reload the page for a new one")]
    Expired,
    /// The signature is not ours for this id and expiry (tampered, or for another video).
    #[error("the link's signature does not match; it was changed or is for another video")]
    Invalid,
    /// `exp` without `sig`, or the other way round, or not a number.
    #[error("a signed link needs both exp (unix seconds) and sig")]
    Incomplete,
}

/// Signs and checks stream URLs.
pub(crate) struct UrlSigner {
    key: hmac::Key,
}

impl UrlSigner {
    /// The signer of `secret`.
    pub(crate) fn new(secret: &SecretString) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, &crate::config::derive_key(secret, LABEL)) }
    }

    /// `?exp=…&sig=…` for video `id`, valid until `now + ttl` (seconds since the epoch).
    pub(crate) fn query(&self, id: &str, now: i64, ttl: Duration) -> String {
        let exp = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let sig = hmac::sign(&self.key, message(id, exp).as_bytes());
        format!("exp={exp}&sig={}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// Checks a request's `exp` and `sig` for video `id` at `now`; `Ok(false)` when it carries
    /// neither (not a signed request).
    pub(crate) fn verify(
        &self,
        id: &str,
        exp: Option<&str>,
        sig: Option<&str>,
        now: i64,
    ) -> Result<bool, SignatureError> {
        let (exp, sig) = match (exp, sig) {
            (None, None) => return Ok(false),
            (Some(exp), Some(sig)) => (exp, sig),
            _ => return Err(SignatureError::Incomplete),
        };
        let exp: i64 = exp.parse().map_err(|_| SignatureError::Incomplete)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| SignatureError::Invalid)?;
        // Constant-time comparison; checked before the expiry so a forged link learns nothing.
        hmac::verify(&self.key, message(id, exp).as_bytes(), &sig).map_err(|_| SignatureError::Invalid)?;
        if exp < now {
            return Err(SignatureError::Expired);
        }
        Ok(true)
    }
}

fn message(id: &str, exp: i64) -> String {
    format!("{id}:{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(query: &str) -> (String, String) {
        let (exp, sig) = query.split_once('&').unwrap();
        (exp.trim_start_matches("exp=").to_owned(), sig.trim_start_matches("sig=").to_owned())
    }

    #[test]
    fn a_signed_url_holds_for_its_video_until_it_expires() {
        let signer = UrlSigner::new(&SecretString::from("test-secret-test-secret-test-secret"));
        let (exp, sig) = parts(&signer.query("video1234", 1000, Duration::from_secs(60)));
        assert_eq!(exp, "1060");
        assert_eq!(signer.verify("video1234", Some(&exp), Some(&sig), 1060), Ok(true));
        assert_eq!(signer.verify("video1234", Some(&exp), Some(&sig), 1061), Err(SignatureError::Expired));
        assert_eq!(signer.verify("other1234", Some(&exp), Some(&sig), 1000), Err(SignatureError::Invalid));
        assert_eq!(signer.verify("video1234", Some("9999"), Some(&sig), 1000), Err(SignatureError::Invalid));
        assert_eq!(signer.verify("video1234", None, None, 1000), Ok(false));
        assert_eq!(signer.verify("video1234", Some(&exp), None, 1000), Err(SignatureError::Incomplete));
        let other = UrlSigner::new(&SecretString::from("another-secret-another-secret-xx"));
        assert_eq!(other.verify("video1234", Some(&exp), Some(&sig), 1000), Err(SignatureError::Invalid));
    }
}
