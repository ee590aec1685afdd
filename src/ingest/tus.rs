//! Resumable uploads (tus 1.0): bytes appended at checked offsets, durable across restarts,
//! verified by checksum when the client sends one, expired when abandoned.
//!
//! Written here rather than taken from a crate: no maintained Rust tus server exists, and the
//! protocol is small. The data of upload `id` is `<data_dir>/tus/<id>`; its row in
//! `tus_uploads` says how many bytes are durable, and a PATCH only advances that after `fsync`.

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::db::Db;
use crate::db::tus::TusUpload;
use crate::ingest::body::BodyError;
use crate::ingest::upload::{self, Committed, IngestError, Staged};
use crate::library::{Library, title};

/// The protocol version spoken (and the only one).
pub(crate) const VERSION: &str = "1.0.0";
/// The extensions implemented.
pub(crate) const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
/// The checksum algorithms accepted in `Upload-Checksum`.
pub(crate) const CHECKSUMS: &str = "sha1,sha256";

/// Why a tus request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TusError {
    /// `Upload-Offset` is not where the upload stands.
    #[error("Upload-Offset is {sent}, but the upload is at {actual}")]
    OffsetMismatch {
        /// What the client sent.
        sent: u64,
        /// Where the upload is.
        actual: u64,
    },
    /// Another request is appending to this upload right now.
    #[error("another request is writing to this upload")]
    Busy,
    /// More bytes than `Upload-Length`.
    #[error("the body goes past Upload-Length ({0} bytes)")]
    PastLength(u64),
    /// The bytes do not match `Upload-Checksum`; they were discarded.
    #[error("the checksum does not match; the {0} bytes of this request were discarded")]
    ChecksumMismatch(u64),
    /// A malformed header.
    #[error("{0}")]
    BadHeader(String),
    /// The client's body failed (or was too slow); what arrived before was kept.
    #[error("{cause}; {kept} bytes were kept")]
    Interrupted {
        /// Bytes of this request that were kept.
        kept: u64,
        /// Why the body ended early.
        cause: BodyError,
    },
    /// Ours.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

// Storage and database failures are internal: the cause is logged by the error renderer,
// never sent. Each gets its own `From` so `?` works on them directly.
impl From<std::io::Error> for TusError {
    fn from(error: std::io::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for TusError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// An `Upload-Checksum` header: the algorithm and the expected digest.
pub(crate) struct Checksum {
    algorithm: &'static ring::digest::Algorithm,
    expected: Vec<u8>,
}

impl Checksum {
    /// Parses `sha1 <base64>` or `sha256 <base64>`.
    pub(crate) fn parse(header: &str) -> Result<Self, TusError> {
        let (name, digest) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("Upload-Checksum: expected \"<algorithm> <base64>\""))?;
        let algorithm = match name {
            "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha256" => &ring::digest::SHA256,
            other => return Err(bad(&format!("Upload-Checksum: {other} is not one of {CHECKSUMS}"))),
        };
        let expected = base64::engine::general_purpose::STANDARD
            .decode(digest.trim())
            .map_err(|_| bad("Upload-Checksum: the digest is not base64"))?;
        Ok(Self { algorithm, expected })
    }
}

fn bad(message: &str) -> TusError {
    TusError::BadHeader(message.to_owned())
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
pub(crate) fn parse_metadata(header: &str) -> Result<Vec<(String, Vec<u8>)>, TusError> {
    header
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(bad(&format!("Upload-Metadata: invalid key {}", crate::error::excerpt(key))));
            }
            let value = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| {
                bad(&format!("Upload-Metadata: the value of {} is not base64", crate::error::excerpt(key)))
            })?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

/// The title `Upload-Metadata` gives: `title`, else the `filename` without its extension.
fn metadata_title(metadata: &str) -> Option<String> {
    let pairs = parse_metadata(metadata).ok()?;
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| String::from_utf8_lossy(v));
    let text = value("title").or_else(|| {
        value("filename")
            .map(|name| name.rsplit_once('.').map_or(name.clone(), |(stem, _)| stem.to_owned().into()))
    })?;
    title::clamp(&text)
}

/// The uploads in progress and where their bytes live.
pub(crate) struct TusStore {
    dir: PathBuf,
    expiry: Duration,
    /// Uploads with a PATCH in flight: tus offsets only make sense one writer at a time.
    writing: Mutex<HashSet<String>>,
}

/// Releases an upload's write lock on drop, however the PATCH ends.
struct WriteLock<'a> {
    store: &'a TusStore,
    id: String,
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        self.store.writing.lock().expect("lock").remove(&self.id);
    }
}

impl TusStore {
    /// Uploads under `<data_dir>/tus`, expiring after `expiry` without activity.
    pub(crate) fn new(data_dir: &std::path::Path, expiry: Duration) -> anyhow::Result<Self> {
        let dir = data_dir.join("tus");
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, expiry, writing: Mutex::new(HashSet::new()) })
    }

    /// Where an upload's bytes are.
    pub(crate) fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// When an upload touched now expires, in ms since the epoch.
    pub(crate) fn expiry_from_now(&self) -> i64 {
        now_ms().saturating_add(i64::try_from(self.expiry.as_millis()).unwrap_or(i64::MAX))
    }

    /// Creates an empty upload of `length` bytes for `owner` (who is signed in, if anyone).
    pub(crate) async fn create(
        &self,
        db: &Db,
        length: u64,
        metadata: &str,
        owner: Option<&str>,
    ) -> anyhow::Result<TusUpload> {
        let id = crate::id::random_id::<12>();
        tokio::fs::File::create(self.path(&id)).await?.sync_all().await?;
        let upload = TusUpload {
            id,
            length: i64::try_from(length)?,
            received: 0,
            metadata: metadata.to_owned(),
            created_at: now_ms() / 1000,
            expires_at: self.expiry_from_now(),
            owner_id: owner.map(str::to_owned),
        };
        db.uploads().insert(&upload).await?;
        Ok(upload)
    }

    /// Appends `body` at `offset`, which must be where the upload stands. Returns the new offset.
    ///
    /// With a checksum, the bytes count only if they all arrived and match; without one, what
    /// arrived before the body failed is kept, so the client resumes from there.
    pub(crate) async fn append<S>(
        &self,
        db: &Db,
        upload: &TusUpload,
        offset: u64,
        checksum: Option<Checksum>,
        mut body: S,
    ) -> Result<u64, TusError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let _lock = self.lock(&upload.id)?;
        // Re-read under the lock: another PATCH may have advanced it since the caller looked.
        let current = db.uploads().find(&upload.id).await?.ok_or(TusError::Busy)?;
        let actual = u64::try_from(current.received).unwrap_or(0);
        if offset != actual {
            return Err(TusError::OffsetMismatch { sent: offset, actual });
        }
        let length = u64::try_from(current.length).unwrap_or(0);
        let mut file = tokio::fs::OpenOptions::new().write(true).open(self.path(&upload.id)).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        let mut digest = checksum.as_ref().map(|c| ring::digest::Context::new(c.algorithm));
        let mut written = 0u64;
        let mut interrupted = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(cause) => {
                    interrupted = Some(cause);
                    break;
                }
            };
            if offset + written + chunk.len() as u64 > length {
                file.set_len(offset).await?;
                return Err(TusError::PastLength(length));
            }
            if let Some(digest) = digest.as_mut() {
                digest.update(&chunk);
            }
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        let matches =
            digest.map(|d| checksum.as_ref().is_some_and(|c| d.finish().as_ref() == c.expected.as_slice()));
        let keep = match (checksum.is_some(), matches) {
            // A checksum covers the whole request body: part of it cannot be verified.
            (true, _) if interrupted.is_some() => false,
            (true, Some(false)) => {
                file.set_len(offset).await?;
                return Err(TusError::ChecksumMismatch(written));
            }
            _ => true,
        };
        let received = if keep { offset + written } else { offset };
        file.set_len(received).await?;
        file.sync_all().await?;
        db.uploads()
            .advance(&upload.id, i64::try_from(received).unwrap_or(i64::MAX), self.expiry_from_now())
            .await?;
        if let Some(cause) = interrupted {
            return Err(TusError::Interrupted { kept: received - offset, cause });
        }
        Ok(received)
    }

    fn lock(&self, id: &str) -> Result<WriteLock<'_>, TusError> {
        if !self.writing.lock().expect("lock").insert(id.to_owned()) {
            return Err(TusError::Busy);
        }
        Ok(WriteLock { store: self, id: id.to_owned() })
    }

    /// Turns a finished upload into a library video, titled as its metadata says and owned by
    /// who created the upload: its row goes, and its file is validated and catalogued like a
    /// form upload (deleted if refused).
    pub(crate) async fn complete(
        &self,
        library: &Library,
        upload: &TusUpload,
    ) -> Result<Committed, IngestError> {
        library.db().uploads().delete(&upload.id).await?;
        let staged = Staged::from_file(self.path(&upload.id)).await?;
        let title = metadata_title(&upload.metadata);
        upload::commit(library, staged, title.as_deref(), upload.owner_id.as_deref()).await
    }

    /// Deletes an upload: its row, then its bytes.
    pub(crate) async fn remove(&self, db: &Db, id: &str) -> anyhow::Result<()> {
        db.uploads().delete(id).await?;
        match tokio::fs::remove_file(self.path(id)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
            _ => Ok(()),
        }
    }

    /// Deletes every expired upload; returns how many.
    pub(crate) async fn sweep(&self, db: &Db) -> anyhow::Result<usize> {
        let expired = db.uploads().expired(now_ms()).await?;
        for id in &expired {
            self.remove(db, id).await?;
        }
        Ok(expired.len())
    }

    /// How often to sweep: often enough that an upload outlives its expiry by at most half of it.
    pub(crate) fn sweep_interval(&self) -> Duration {
        (self.expiry / 2).clamp(Duration::from_millis(50), Duration::from_secs(60))
    }
}

/// Milliseconds since the epoch (the unit of `tus_uploads.expires_at`).
pub(crate) use crate::db::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode_and_bad_ones_are_refused() {
        let pairs = parse_metadata("filename d29ybGRfZG9taW5hdGlvbi5tcDQ=,is_confidential").unwrap();
        assert_eq!(pairs[0], ("filename".to_owned(), b"world_domination.mp4".to_vec()));
        assert_eq!(pairs[1], ("is_confidential".to_owned(), Vec::new()));
        assert!(parse_metadata("title not-base64!").is_err());
        assert!(parse_metadata(" Zm9v").is_ok(), "empty pairs are skipped");
    }

    #[test]
    fn titles_come_from_metadata_title_else_the_file_name_and_are_bounded() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let both = format!("filename {},title {}", b64("clip.mp4"), b64(" Holiday "));
        assert_eq!(metadata_title(&both).as_deref(), Some("Holiday"));
        assert_eq!(
            metadata_title(&format!("filename {}", b64("clip.final.mp4"))).as_deref(),
            Some("clip.final")
        );
        let long = format!("title {}", b64(&"é".repeat(title::MAX_CHARS + 5)));
        assert_eq!(metadata_title(&long).map(|t| t.chars().count()), Some(title::MAX_CHARS));
        assert_eq!(metadata_title(&format!("title {}", b64("  "))), None);
        assert_eq!(metadata_title("title not-base64!"), None);
    }

    #[test]
    fn checksums_name_their_algorithm() {
        assert!(Checksum::parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").is_ok());
        assert!(Checksum::parse("sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").is_ok());
        assert!(Checksum::parse("md5 1B2M2Y8AsgTpgAmY7PhCfg==").is_err());
        assert!(Checksum::parse("sha256").is_err());
    }
}
