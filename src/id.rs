//! Random identifiers: the one place kino draws randomness for ids, names, cookies and secrets.

use base64::Engine;

/// `N` bytes from the operating system's generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Linux's getrandom(2) only fails before the pool is seeded at early boot, long before a
    // server starts; there is no fallback worth having, so this is an invariant, not an error.
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    bytes
}

/// `N` random bytes as URL-safe unpadded base64 (4 characters per 3 bytes): safe in paths,
/// file names, cookies and multipart boundaries alike.
pub(crate) fn random_id<const N: usize>() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_of_the_length_their_bytes_give_and_differ() {
        let (a, b) = (random_id::<9>(), random_id::<9>());
        assert_eq!((a.len(), random_id::<16>().len(), random_id::<32>().len()), (12, 22, 43));
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert_ne!(a, b);
    }
}
