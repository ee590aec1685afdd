//! The session store: tower-sessions' [`SessionStore`] over the `sessions` repository.
//!
//! Everything that reads or writes sessions goes through the trait, so a store shared by several
//! nodes (Redis, for the scale-out issue) replaces [`DbStore`] in `app.rs` and nothing else.

use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{Error, Result};

use crate::db::Db;
use crate::db::sessions::SessionRow;

/// Sessions kept in the database, keyed by the hash of their id.
#[derive(Debug, Clone)]
pub(crate) struct DbStore {
    db: Db,
}

impl DbStore {
    /// A store over `db`'s `sessions` table.
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Deletes the sessions that have expired; returns how many.
    pub(crate) async fn delete_expired(&self) -> sqlx::Result<u64> {
        self.db.sessions().delete_expired(crate::db::now_secs()).await
    }
}

/// The key a session is stored under: BLAKE3 of the cookie's id, so the table holds no value a
/// cookie could carry.
fn id_hash(id: &Id) -> String {
    blake3::hash(id.to_string().as_bytes()).to_hex().to_string()
}

fn row(record: &Record) -> Result<SessionRow> {
    Ok(SessionRow {
        id_hash: id_hash(&record.id),
        data: serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?,
        expires_at: record.expiry_date.unix_timestamp(),
    })
}

fn backend(error: sqlx::Error) -> Error {
    Error::Backend(format!("sessions table: {error}"))
}

#[async_trait::async_trait]
impl SessionStore for DbStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A 128-bit random id colliding is beyond unlikely; a fresh one is drawn if it ever does.
        loop {
            if self.db.sessions().create(&row(record)?).await.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.db.sessions().save(&row(record)?).await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let now = crate::db::now_secs();
        let Some(row) = self.db.sessions().load(&id_hash(id), now).await.map_err(backend)? else {
            return Ok(None);
        };
        let data = serde_json::from_str(&row.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expires_at)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.db.sessions().delete(&id_hash(id)).await.map_err(backend)
    }
}
