//! Opaque refresh tokens: 256 random bits, kept only as their SHA-256.

/// Characters of a token: 32 bytes as unpadded base64url.
const TOKEN_LEN: usize = 43;

/// A new refresh token.
pub(super) fn generate() -> String {
    crate::id::random_id::<32>()
}

/// The stored form of `token`: lowercase hex SHA-256. A fast hash is enough, unlike for
/// passwords: the token is 256 random bits, so there is nothing to guess.
pub(super) fn hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `token` could be one kino issued; anything else is refused without a lookup.
pub(super) fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_distinct_and_hash_to_hex() {
        let (a, b) = (generate(), generate());
        assert!(well_formed(&a) && well_formed(&b) && a != b);
        assert!(!well_formed("short") && !well_formed(&format!("{}!", &a[..42])));
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(h, hash(&a));
        assert_ne!(h, hash(&b));
    }
}
