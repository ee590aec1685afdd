//! The server secret: redacted whenever it is shown, generated once per data dir outside production.

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
    fn debug_output_hides_the_secret() {
        let secret = SecretString::from("hunter2-hunter2".to_owned());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
