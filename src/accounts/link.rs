//! The single-use links mailed to an account: their tokens (256 random bits, stored only as
//! their BLAKE3), why a presented one is refused, and the mail that carries them.

use std::time::Duration;

use crate::db::account_tokens::{AccountToken, Purpose};
use crate::db::outbox::NewMail;

/// Characters of a token: 32 bytes as unpadded base64url.
const TOKEN_LEN: usize = 43;

/// A new token.
pub(crate) fn generate() -> String {
    crate::id::random_id::<32>()
}

/// The stored form of `token`: lowercase hex BLAKE3. A fast hash is enough, unlike for
/// passwords: the token is 256 random bits, so there is nothing to guess.
pub(crate) fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// Whether `token` could be one kino issued; anything else is refused without a lookup.
pub(crate) fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Why a link does nothing; the message is shown on the page and in the API's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    /// No link of this purpose was sent with this token (or it is not even shaped like one).
    #[error("this link is not valid: kino sent no such link (was it copied whole?)")]
    Unknown,
    /// It was sent, but its time is up.
    #[error("this link has expired; ask for a new one")]
    Expired,
    /// It was used already, or a newer link of the same kind replaced it.
    #[error("this link was used already, or a newer one replaced it; ask for a new one if you need it")]
    Used,
}

/// Whether the stored `token` still opens a link of `purpose` at `now_ms`. A used token reads
/// as used even after it expired: that is the more useful thing to be told.
pub(crate) fn check(token: &AccountToken, purpose: Purpose, now_ms: i64) -> Result<(), LinkError> {
    if token.purpose != purpose.as_str() {
        Err(LinkError::Unknown)
    } else if token.used_at.is_some() {
        Err(LinkError::Used)
    } else if token.expires_at <= now_ms {
        Err(LinkError::Expired)
    } else {
        Ok(())
    }
}

/// The mail that carries `link` to `to`.
pub(crate) fn mail(purpose: Purpose, to: &str, name: &str, link: &str, ttl: Duration) -> NewMail {
    let valid = describe(ttl);
    let (kind, subject, body_text) = match purpose {
        Purpose::Verify => (
            "verify_email",
            "Confirm your email address for kino",
            format!(
                "Hello {name},\n\nplease confirm that this is your address by opening this link:\n\n\
                 {link}\n\nIt works once, for {valid}. If you did not sign up for kino, ignore\n\
                 this message.\n"
            ),
        ),
        Purpose::Reset => (
            "password_reset",
            "Reset your kino password",
            format!(
                "Hello {name},\n\nsomeone (hopefully you) asked to reset the password of your kino\n\
                 account. To choose a new one, open this link:\n\n{link}\n\n\
                 It works once, for {valid}. If you did not ask, ignore this message:\n\
                 your password stays as it is.\n"
            ),
        ),
    };
    NewMail { kind: kind.into(), to_addr: to.into(), subject: subject.into(), body_text }
}

/// `ttl` in the largest whole unit a reader takes in at once: "48 hours", "1 hour", "90 seconds".
fn describe(ttl: Duration) -> String {
    let secs = ttl.as_secs();
    let (n, unit) = match secs {
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The path a link of `purpose` opens.
pub(crate) fn path(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Verify => "/account/verify",
        Purpose::Reset => "/account/reset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(purpose: Purpose, expires_at: i64, used_at: Option<i64>) -> AccountToken {
        AccountToken {
            token_hash: hash("x"),
            user_id: "user-0001".into(),
            purpose: purpose.as_str().into(),
            created_at: 0,
            expires_at,
            used_at,
        }
    }

    #[test]
    fn tokens_are_well_formed_distinct_and_only_their_blake3_is_kept() {
        let (a, b) = (generate(), generate());
        assert!(well_formed(&a) && well_formed(&b) && a != b, "{a} {b}");
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a));
        assert_eq!(hash("abc"), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
        for bad in ["", "short", &format!("{a}x"), &a.replace(|c: char| c.is_alphanumeric(), "!")] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn a_link_works_until_it_expires_or_is_used_and_only_for_its_purpose() {
        let fresh = stored(Purpose::Verify, 1000, None);
        assert_eq!(check(&fresh, Purpose::Verify, 999), Ok(()));
        assert_eq!(check(&fresh, Purpose::Verify, 1000), Err(LinkError::Expired));
        assert_eq!(check(&fresh, Purpose::Reset, 999), Err(LinkError::Unknown));
        let used = stored(Purpose::Reset, 1000, Some(10));
        assert_eq!(check(&used, Purpose::Reset, 20), Err(LinkError::Used));
        assert_eq!(check(&used, Purpose::Reset, 5000), Err(LinkError::Used), "used outranks expired");
    }

    #[test]
    fn the_mail_carries_the_link_and_how_long_it_works() {
        let mail = mail(
            Purpose::Reset,
            "ada@example.org",
            "Ada",
            "http://localhost:8080/account/reset?token=t",
            Duration::from_secs(3600),
        );
        assert_eq!((mail.kind.as_str(), mail.to_addr.as_str()), ("password_reset", "ada@example.org"));
        assert!(
            mail.body_text.contains("\n\nhttp://localhost:8080/account/reset?token=t\n\n"),
            "{}",
            mail.body_text
        );
        assert!(mail.body_text.contains("for 1 hour."), "{}", mail.body_text);
        let lives = |secs| describe(Duration::from_secs(secs));
        assert_eq!(
            (lives(48 * 3600), lives(300), lives(90), lives(1)),
            ("48 hours".into(), "5 minutes".into(), "90 seconds".into(), "1 second".into())
        );
    }
}
