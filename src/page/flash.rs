//! Flash messages: one line about the last action ("Signed in", "Deleted"), kept in the session
//! and shown once, on the next page.

use tower_sessions_core::Session;
use tower_sessions_core::session::Error;

/// The session key of the message.
const KEY: &str = "flash";

/// Keeps `message` for the next page the visitor sees.
pub(crate) async fn set(session: &Session, message: impl Into<String>) -> Result<(), Error> {
    session.insert(KEY, message.into()).await?;
    Ok(())
}

/// The waiting message, removed so it shows once.
pub(crate) async fn take(session: &Session) -> Result<Option<String>, Error> {
    // Read first: a removal marks the session changed (a store write) even when nothing was there.
    if session.get::<String>(KEY).await?.is_none() {
        return Ok(None);
    }
    session.remove::<String>(KEY).await
}
