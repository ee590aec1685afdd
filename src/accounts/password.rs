//! Password hashing with argon2id: OWASP's parameters, the strength rule, and the rehash check.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The shortest password accepted, in characters: NIST SP 800-63B asks for at least 8; two
/// more cost a person little and an attacker a hundredfold.
pub(crate) const MIN_CHARS: usize = 10;
/// The longest, in characters: argon2 takes any length, this only bounds the request.
pub(crate) const MAX_CHARS: usize = 256;

/// Hashes and verifies passwords with one set of argon2id parameters.
#[derive(Debug, Clone)]
pub(crate) struct Hasher {
    params: Params,
}

impl Default for Hasher {
    /// OWASP's first argon2id configuration: 19 MiB of memory, 2 passes, 1 lane.
    fn default() -> Self {
        Self::new(Params::new(19 * 1024, 2, 1, None).expect("OWASP's parameters are valid"))
    }
}

impl Hasher {
    /// A hasher with these parameters (tests use cheaper ones to exercise the rehash).
    pub(crate) fn new(params: Params) -> Self {
        Self { params }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh 16-byte salt.
    pub(crate) fn hash(&self, password: &str) -> String {
        let salt = SaltString::encode_b64(&crate::id::random_bytes::<16>()).expect("16 bytes make a salt");
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2id hashes any password with valid parameters")
            .to_string()
    }

    /// Whether `password` matches `phc`, using the parameters stored in `phc` (so hashes made
    /// with older parameters still verify); a malformed hash matches nothing.
    pub(crate) fn verify(&self, password: &str, phc: &str) -> bool {
        PasswordHash::new(phc)
            .is_ok_and(|hash| self.argon2().verify_password(password.as_bytes(), &hash).is_ok())
    }

    /// Whether `phc` was made with another algorithm, version or parameters than ours, so the
    /// password, known at this sign-in, should be hashed again.
    pub(crate) fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else { return true };
        let same_params = Params::try_from(&hash).is_ok_and(|p| {
            (p.m_cost(), p.t_cost(), p.p_cost())
                == (self.params.m_cost(), self.params.t_cost(), self.params.p_cost())
        });
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
            || !same_params
    }
}

/// Why a password is refused, as the `password: …` message says.
pub(crate) fn check_strength(password: &str, email: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(format!("must be at least {MIN_CHARS} characters (it has {chars})"));
    }
    if chars > MAX_CHARS {
        return Err(format!("must be at most {MAX_CHARS} characters"));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err("must not be the email address".to_owned());
    }
    let first = password.chars().next().unwrap_or_default();
    if password.chars().all(|c| c == first) {
        return Err("must not be one character repeated".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Hasher {
        Hasher::new(Params::new(1024, 1, 1, None).unwrap())
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify_only_their_password() {
        let hasher = Hasher::default();
        let (a, b) = (hasher.hash("correct horse"), hasher.hash("correct horse"));
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(hasher.verify("correct horse", &a));
        assert!(!hasher.verify("correct horsf", &a));
        assert!(!hasher.verify("correct horse", "not a hash"));
        assert!(!hasher.needs_rehash(&a));
    }

    #[test]
    fn a_hash_with_other_parameters_verifies_and_asks_for_a_rehash() {
        let old = cheap().hash("correct horse");
        let current = Hasher::default();
        assert!(current.verify("correct horse", &old), "old parameters still verify");
        assert!(current.needs_rehash(&old));
        assert!(current.needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"));
        assert!(current.needs_rehash("garbage"));
    }

    #[test]
    fn weak_passwords_are_refused_with_the_reason() {
        assert_eq!(
            check_strength("short", "a@b.example").unwrap_err(),
            "must be at least 10 characters (it has 5)"
        );
        assert!(check_strength("aaaaaaaaaaaa", "a@b.example").unwrap_err().contains("repeated"));
        assert!(check_strength("Me@Mail.example", "me@mail.example").unwrap_err().contains("email"));
        assert!(check_strength(&"x".repeat(300), "a@b.example").is_err());
        assert!(check_strength("a good passphrase", "a@b.example").is_ok());
    }
}
