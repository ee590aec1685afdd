//! Streaming video uploads: bytes go to a temporary file as they arrive, hashed on the way, and
//! only a complete, valid video is renamed into the library.
//!
//! The temporary file lives under `<data_dir>/tmp`, on the same file system as the library, so
//! the final rename is atomic; dropping a `Staged` (an aborted or refused upload) deletes it.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use crate::db::videos::Video;
use crate::ingest::faststart::{self, Outcome};
use crate::ingest::multipart::MultipartError;
use crate::library::Library;
use crate::media::sniff;

/// Writes are gathered into blocks this large: one blocking-pool trip per MiB, not per packet.
const WRITE_BLOCK: usize = 1024 * 1024;

/// Media types accepted as video uploads (sniffed from the content, never the name).
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/webm", "video/x-matroska", "video/quicktime"];

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    /// More bytes than the limit.
    #[error("the upload is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Not a video kino can serve.
    #[error("{0}")]
    Unsupported(String),
    /// The client's body failed: a disconnect, a timeout, malformed multipart.
    #[error(transparent)]
    Form(#[from] MultipartError),
    /// The server could not store it.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An upload on disk, not yet in the library.
pub(crate) struct Staged {
    file: NamedTempFile,
    size: u64,
    hash: String,
    head: Vec<u8>,
}

/// Streams `chunks` into a temporary file under `tmp_dir`, refusing more than `limit` bytes.
pub(crate) async fn stage<S>(tmp_dir: &Path, limit: u64, mut chunks: S) -> Result<Staged, IngestError>
where
    S: Stream<Item = Result<Bytes, MultipartError>> + Unpin,
{
    std::fs::create_dir_all(tmp_dir).map_err(anyhow::Error::from)?;
    let file = NamedTempFile::new_in(tmp_dir).map_err(anyhow::Error::from)?;
    let mut writer = tokio::fs::File::from_std(file.reopen().map_err(anyhow::Error::from)?);
    let mut hasher = blake3::Hasher::new();
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    let mut block = BytesMut::with_capacity(WRITE_BLOCK);
    let mut size: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if head.len() < sniff::SNIFF_LEN {
            let take = (sniff::SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        block.extend_from_slice(&chunk);
        if block.len() >= WRITE_BLOCK {
            writer.write_all(&block).await.map_err(anyhow::Error::from)?;
            block.clear();
        }
    }
    writer.write_all(&block).await.map_err(anyhow::Error::from)?;
    writer.sync_all().await.map_err(anyhow::Error::from)?;
    Ok(Staged { file, size, hash: hasher.finalize().to_hex().to_string(), head })
}

impl Staged {
    /// Stages a complete file that is already on disk (a finished resumable upload): it is
    /// hashed and sniffed here, and deleted if it is dropped without being committed.
    pub(crate) async fn from_file(path: std::path::PathBuf) -> Result<Self, IngestError> {
        tokio::task::spawn_blocking(move || -> std::io::Result<Staged> {
            let file = std::fs::File::open(&path)?;
            let size = file.metadata()?.len();
            let mut head = vec![0u8; sniff::SNIFF_LEN.min(usize::try_from(size).unwrap_or(usize::MAX))];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)?;
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(&file)?;
            let file = NamedTempFile::from_parts(file, tempfile::TempPath::try_from_path(path)?);
            Ok(Staged { file, size, hash: hasher.finalize().to_hex().to_string(), head })
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| IngestError::Internal(e.into()))
    }
}

/// What `commit` did with a staged upload.
pub(crate) enum Committed {
    /// A new video in the library.
    Created(Video),
    /// The same bytes were already in the library; nothing was stored.
    Existing(Video),
}

/// Checks a staged upload is a video, moves an MP4 index to the front, and renames it into the
/// library unless the same content is already there.
pub(crate) async fn commit(
    library: &Library,
    staged: Staged,
    title: Option<&str>,
) -> Result<Committed, IngestError> {
    let Staged { file, size, mut hash, head } = staged;
    if size == 0 {
        return Err(IngestError::Unsupported("the file is empty".into()));
    }
    let mime = match sniff::sniff(&head) {
        Some(mime) if VIDEO_TYPES.contains(&mime) => mime,
        Some(other) => {
            return Err(IngestError::Unsupported(format!(
                "the file is {other}, not a video kino can stream"
            )));
        }
        None => {
            return Err(IngestError::Unsupported("the file is not a recognised video (MP4 or WebM)".into()));
        }
    };
    if mime == "video/mp4" || mime == "video/quicktime" {
        let path = file.path().to_owned();
        let outcome = tokio::task::spawn_blocking(move || -> std::io::Result<(Outcome, Option<String>)> {
            let outcome = faststart::make_faststart(&path)?;
            // Rewriting moved bytes, so the content hash (the ETag) is recomputed.
            let rehash = match outcome {
                Outcome::Rewritten { .. } => {
                    let mut hasher = blake3::Hasher::new();
                    hasher.update_reader(std::fs::File::open(&path)?)?;
                    Some(hasher.finalize().to_hex().to_string())
                }
                _ => None,
            };
            Ok((outcome, rehash))
        })
        .await
        .map_err(anyhow::Error::from)?;
        match outcome {
            Ok((_, Some(new_hash))) => hash = new_hash,
            Ok(_) => {}
            Err(error) => {
                return Err(IngestError::Unsupported(format!("the MP4 could not be read: {error}")));
            }
        }
    }
    let db = library.db();
    if let Some(existing) = db.files().find_by_hash(&hash).await.map_err(anyhow::Error::from)?
        && let Some(video) = db.videos().find(&existing.id).await.map_err(anyhow::Error::from)?
    {
        return Ok(Committed::Existing(video));
    }
    let extension = sniff::extension(mime).unwrap_or("bin");
    let video = library.add_upload(file, extension, title).await?;
    Ok(Committed::Created(video))
}
