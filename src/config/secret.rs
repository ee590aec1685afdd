//! The server secret: redacted whenever it is shown, generated once per data dir outside
//! production, and the keys derived from it for each purpose.

use std::path::Path;

use anyhow::Context;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serializer};

/// File under the data dir that keeps a generated development secret across restarts.
const SECRET_FILE: &str = "secret";

/// Serializes a secret as `"[redacted]"` so `kino config` and logs never show it.
pub(crate) fn serialize_redacted<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// Deserializes a secret from a string, or from a number the environment layer parsed as one.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
    }
    Ok(Option::<Raw>::deserialize(deserializer)?.map(|raw| {
        let text = match raw {
            Raw::Text(s) => s,
            Raw::Unsigned(n) => n.to_string(),
            Raw::Signed(n) => n.to_string(),
            Raw::Float(n) => n.to_string(),
        };
        SecretString::from(text)
    }))
}

/// A 256-bit key for one purpose, derived from the server secret with HKDF-SHA256 (RFC 5869):
/// each `label` gives an unrelated key, so the token key, the key of encrypted values and the
/// view-cookie HMAC (which keys with the secret itself) never share a key.
pub(crate) fn derive_key(secret: &SecretString, label: &str) -> [u8; 32] {
    use ring::hkdf;
    use secrecy::ExposeSecret;
    // A fixed salt: the secret is already uniformly random (or checked to be long), and a
    // random salt would have to be stored beside it and kept forever.
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"kino key derivation v1");
    let prk = salt.extract(secret.expose_secret().as_bytes());
    let info = [label.as_bytes()];
    let okm = prk.expand(&info, hkdf::HKDF_SHA256).expect("32 bytes is within HKDF-SHA256's output limit");
    let mut key = [0u8; 32];
    okm.fill(&mut key).expect("the output is the length asked for");
    key
}

/// Reads `<data_dir>/secret`, creating it (mode 0600, 32 random bytes) on first use.
pub(crate) fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join(SECRET_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(SecretString::from(existing.to_owned()));
        }
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let secret = crate::id::random_id::<32>();
    crate::fs::write_private(&path, secret.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(SecretString::from(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_secret_is_kept_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let second = load_or_create(dir.path()).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert!(first.expose_secret().len() >= 40);
    }

    #[test]
    fn each_label_derives_its_own_stable_key() {
        let secret = SecretString::from("test-secret-test-secret-test-secret");
        let token = derive_key(&secret, "kino/jwt");
        assert_eq!(token, derive_key(&secret, "kino/jwt"));
        assert_ne!(token, derive_key(&secret, "kino/secrets"));
        assert_ne!(token, derive_key(&SecretString::from("another-secret-another-secret"), "kino/jwt"));
        assert_ne!(&token[..], &secret.expose_secret().as_bytes()[..32]);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let secret = SecretString::from("hunter2-hunter2".to_owned());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
