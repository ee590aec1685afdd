//! Secrets at rest that must be read back (an SMTP password, API keys): AES-256-GCM under a key
//! derived from the server secret, in a versioned text form, `v1.<base64url(nonce ‖ sealed)>`.
//!
//! AES-256-GCM from ring (already kino's TLS crypto): hardware-accelerated, constant time. Each
//! value gets a fresh random 96-bit nonce; with at most a few thousand values per secret, the
//! chance of a repeat stays far below NIST SP 800-38D's 2⁻³² bound for random nonces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::SecretString;

/// The prefix of the current format; a new algorithm or layout gets `v2.`.
const V1: &str = "v1.";

/// The HKDF label of this key: no other purpose derives it.
const LABEL: &str = "kino/secrets/aes-256-gcm/v1";

/// Bound into every value's tag, so a ciphertext made by other software under the same key
/// (should one ever exist) never decrypts as a kino secret.
const AAD: &[u8] = b"kino secret v1";

/// Why a value does not decrypt; none of them says anything about the plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SecretError {
    /// Not `v1.` followed by base64url of at least a nonce and a tag.
    #[error("not an encrypted value: expected v1.<base64url>")]
    Malformed,
    /// A version this build does not know.
    #[error("encrypted with an unknown format version {0:?}")]
    UnknownVersion(String),
    /// The tag does not verify: another server secret, or the value was changed.
    #[error("does not decrypt with this server secret (another secret, or the value was changed)")]
    Rejected,
    /// The plaintext is not UTF-8 text.
    #[error("decrypts to bytes that are not UTF-8 text")]
    NotText,
}

/// Encrypts and decrypts text under the key derived from one server secret.
pub(crate) struct SecretBox {
    key: LessSafeKey,
}

impl SecretBox {
    /// The box of `secret`'s derived key.
    pub(crate) fn new(secret: &SecretString) -> Self {
        let key = crate::config::derive_key(secret, LABEL);
        let key = UnboundKey::new(&AES_256_GCM, &key).expect("32 bytes is an AES-256 key");
        Self { key: LessSafeKey::new(key) }
    }

    /// `plaintext` sealed under a fresh nonce, as `v1.<base64url>`.
    pub(crate) fn encrypt(&self, plaintext: &str) -> String {
        let nonce = crate::id::random_bytes::<NONCE_LEN>();
        let mut sealed = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut sealed)
            .expect("a short text is within AES-GCM's length limit");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{V1}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The text `encrypted` was made from, if this key made it and nothing changed it.
    pub(crate) fn decrypt(&self, encrypted: &str) -> Result<String, SecretError> {
        let encrypted = encrypted.trim();
        let Some(body) = encrypted.strip_prefix(V1) else {
            return Err(match encrypted.split_once('.') {
                Some((version, _)) if version.starts_with('v') && version.len() <= 4 => {
                    SecretError::UnknownVersion(version.to_owned())
                }
                _ => SecretError::Malformed,
            });
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SecretError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Malformed)?;
        let mut sealed = sealed.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(AAD), &mut sealed).map_err(|_| SecretError::Rejected)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::NotText)
    }

    /// Whether `value` is in the encrypted form (and should be decrypted before use).
    pub(crate) fn is_encrypted(value: &str) -> bool {
        value.trim_start().starts_with(V1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(secret: &str) -> SecretBox {
        SecretBox::new(&SecretString::from(secret.to_owned()))
    }

    #[test]
    fn text_round_trips_and_each_encryption_differs() {
        let sb = boxed("test-secret-test-secret-test-secret");
        let (a, b) = (sb.encrypt("hunter2 ünïcode"), sb.encrypt("hunter2 ünïcode"));
        assert!(a.starts_with("v1.") && SecretBox::is_encrypted(&a), "{a}");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("hunter2"));
        assert_eq!(sb.decrypt(&a).unwrap(), "hunter2 ünïcode");
        assert_eq!(sb.decrypt(&format!("{b}\n")).unwrap(), "hunter2 ünïcode");
        assert_eq!(sb.decrypt(&sb.encrypt("")).unwrap(), "");
    }

    #[test]
    fn a_changed_byte_anywhere_is_rejected() {
        let sb = boxed("test-secret-test-secret-test-secret");
        let good = URL_SAFE_NO_PAD.decode(&sb.encrypt("smtp-password")[3..]).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let text = format!("v1.{}", URL_SAFE_NO_PAD.encode(&bad));
            assert_eq!(sb.decrypt(&text), Err(SecretError::Rejected), "byte {i}");
        }
        let truncated = format!("v1.{}", URL_SAFE_NO_PAD.encode(&good[..good.len() - 1]));
        assert_eq!(sb.decrypt(&truncated), Err(SecretError::Rejected));
    }

    #[test]
    fn another_secret_cannot_read_it() {
        let value = boxed("test-secret-test-secret-test-secret").encrypt("smtp-password");
        assert_eq!(boxed("another-secret-another-secret-xx").decrypt(&value), Err(SecretError::Rejected));
    }

    #[test]
    fn malformed_and_unknown_versions_say_so() {
        let sb = boxed("test-secret-test-secret-test-secret");
        assert_eq!(sb.decrypt("plain password"), Err(SecretError::Malformed));
        assert_eq!(sb.decrypt("v1.not base64!"), Err(SecretError::Malformed));
        assert_eq!(sb.decrypt("v1.AAAA"), Err(SecretError::Malformed));
        assert_eq!(sb.decrypt("v9.AAAA"), Err(SecretError::UnknownVersion("v9".into())));
    }
}
