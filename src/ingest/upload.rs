//! Streaming video uploads: bytes go to a temporary file as they arrive, hashed and sniffed on
//! the way, and only a complete, valid video is renamed into the library.
//!
//! The temporary file lives under `<data_dir>/tmp`, on the same file system as the library, so
//! the final rename is atomic; dropping a `Staged` (an aborted or refused upload) deletes it.
//!
//! # One pass over the bytes
//! The content hash is the ETag, so it must be of the bytes finally stored. A streamed upload is
//! hashed as it arrives, unless its first boxes show an MP4 with `moov` after `mdat`: faststart
//! will rewrite it, so its hash is taken from the rewrite's own copy instead. A finished tus
//! upload, assembled over many requests, is hashed once at completion (by that copy, or by one
//! read). The type is sniffed once from the first bytes. The catalog takes both and reads only
//! the container's index. So every upload's bytes are hashed once, and read back from disk at
//! most once (tests: `a_streamed_upload_is_hashed_once…`, `a_finished_resumable_upload…`).

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use crate::db::videos::Video;
use crate::ingest::faststart::{self, Outcome};
use crate::ingest::multipart::MultipartError;
use crate::library::{Content, Library};
use crate::media::container::mp4box::StreamWalk;
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

// Storage and database failures are internal: the cause is logged by the error renderer,
// never sent. Each gets its own `From` so `?` works on them directly.
impl From<std::io::Error> for IngestError {
    fn from(error: std::io::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for IngestError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

/// An upload on disk, not yet in the library.
pub(crate) struct Staged {
    file: NamedTempFile,
    size: u64,
    /// Sniffed from the first bytes.
    mime: Option<&'static str>,
    /// The hash of the bytes as they are, when it was taken on the way in.
    hash: Option<String>,
}

/// Streams `chunks` into a temporary file under the library's tmp dir, refusing more than
/// `limit` bytes.
pub(crate) async fn stage<S>(library: &Library, limit: u64, mut chunks: S) -> Result<Staged, IngestError>
where
    S: Stream<Item = Result<Bytes, MultipartError>> + Unpin,
{
    let tmp_dir = library.tmp_dir();
    std::fs::create_dir_all(tmp_dir)?;
    let file = NamedTempFile::new_in(tmp_dir)?;
    let mut writer = tokio::fs::File::from_std(file.reopen()?);
    let mut hasher = Some(library.hasher());
    let mut walk = StreamWalk::default();
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
        walk.feed(&chunk);
        if walk.moov_late() == Some(true) {
            // Faststart rewrites it and hashes the new bytes as it writes them.
            hasher = None;
        }
        if let Some(hasher) = hasher.as_mut() {
            hasher.update(&chunk);
        }
        block.extend_from_slice(&chunk);
        if block.len() >= WRITE_BLOCK {
            writer.write_all(&block).await?;
            block.clear();
        }
    }
    writer.write_all(&block).await?;
    writer.sync_all().await?;
    Ok(Staged { file, size, mime: sniff::sniff(&head), hash: hasher.map(|h| h.finish()) })
}

impl Staged {
    /// Stages a complete file that is already on disk (a finished resumable upload): sniffed
    /// here, hashed by `commit`, and deleted if it is dropped without being committed.
    pub(crate) async fn from_file(path: std::path::PathBuf) -> Result<Self, IngestError> {
        tokio::task::spawn_blocking(move || -> std::io::Result<Staged> {
            let file = std::fs::File::open(&path)?;
            let size = file.metadata()?.len();
            let mut head = vec![0u8; sniff::SNIFF_LEN.min(usize::try_from(size).unwrap_or(usize::MAX))];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut head, 0)?;
            let file = NamedTempFile::from_parts(file, tempfile::TempPath::try_from_path(path)?);
            Ok(Staged { file, size, mime: sniff::sniff(&head), hash: None })
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(IngestError::from)
    }
}

/// What `commit` did with a staged upload.
pub(crate) enum Committed {
    /// A new video in the library.
    Created(Video),
    /// The same bytes were already in the library; nothing was stored.
    Existing(Video),
}

impl Committed {
    /// The video, new or not.
    pub(crate) fn video(&self) -> &Video {
        match self {
            Committed::Created(video) | Committed::Existing(video) => video,
        }
    }
}

/// Checks a staged upload is a video, moves an MP4 index to the front, and renames it into the
/// library, owned by `owner`, unless `owner` already has the same content there.
///
/// The same bytes from someone else are stored again as the uploader's own video: answering
/// with the other person's would hand over a video they cannot edit, and name (or sign a URL
/// for) one that may be private or unlisted.
pub(crate) async fn commit(
    library: &Library,
    staged: Staged,
    title: Option<&str>,
    owner: Option<&str>,
) -> Result<Committed, IngestError> {
    let Staged { file, size, mime, hash } = staged;
    let mime = video_type(size, mime)?;
    let hash = finish(library, &file, mime, hash).await?;
    let db = library.db();
    if let Some(existing) = db.files().find_video_by_hash(&hash, owner).await?
        && let Some(video) = db.videos().find(&existing.id).await?
    {
        return Ok(Committed::Existing(video));
    }
    let video = library.add_upload(file, Content { hash, mime }, title, owner).await?;
    Ok(Committed::Created(video))
}

/// The sniffed type, if it is a video kino serves.
fn video_type(size: u64, mime: Option<&'static str>) -> Result<&'static str, IngestError> {
    match mime {
        _ if size == 0 => Err(IngestError::Unsupported("the file is empty".into())),
        Some(mime) if VIDEO_TYPES.contains(&mime) => Ok(mime),
        Some(other) => {
            Err(IngestError::Unsupported(format!("the file is {other}, not a video kino can stream")))
        }
        None => Err(IngestError::Unsupported("the file is not a recognised video (MP4 or WebM)".into())),
    }
}

/// Makes an MP4 faststart and returns the content hash of the final bytes: the rewrite's when
/// it rewrote them, else the one taken on the way in, else (a tus upload) one read of the file.
async fn finish(
    library: &Library,
    file: &NamedTempFile,
    mime: &str,
    hash: Option<String>,
) -> Result<String, IngestError> {
    let path = file.path().to_owned();
    let mp4 = mime == "video/mp4" || mime == "video/quicktime";
    let mut hasher = library.hasher();
    let done = tokio::task::spawn_blocking(move || -> std::io::Result<Result<String, String>> {
        if mp4 {
            match faststart::make_faststart(&path, &mut hasher) {
                Ok(Outcome::Rewritten { .. }) => return Ok(Ok(hasher.finish())),
                Ok(_) => {}
                Err(error) => return Ok(Err(format!("the MP4 could not be read: {error}"))),
            }
        }
        if let Some(hash) = hash {
            return Ok(Ok(hash));
        }
        hasher.update_reader(std::fs::File::open(&path)?)?;
        Ok(Ok(hasher.finish()))
    })
    .await
    .map_err(anyhow::Error::from)??;
    done.map_err(IngestError::Unsupported)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use futures_util::stream;

    use super::*;
    use crate::config::Config;

    const H264: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4");
    const MOOV_AT_END: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-moov-at-end.mp4");
    const WEBM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-vp9.webm");

    /// A library with no media roots under `dir`.
    async fn library(dir: &Path) -> Library {
        let mut config = Config::for_tests(dir);
        config.media_dirs = Vec::new();
        Library::open(&config).await.unwrap()
    }

    /// The bytes as a request body would bring them, in 64 KiB chunks.
    fn chunks(bytes: &[u8]) -> impl Stream<Item = Result<Bytes, MultipartError>> + Unpin + use<> {
        let chunks: Vec<_> = bytes.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(chunks)
    }

    /// The stored video's content hash, and that of the bytes its file holds.
    async fn hashes(library: &Library, committed: Committed) -> (String, String) {
        let Committed::Created(video) = committed else { panic!("a new video") };
        let on_disk =
            std::fs::read(library.tmp_dir().with_file_name("library").join(&video.file.path)).unwrap();
        (video.file.hash, blake3::hash(&on_disk).to_hex().to_string())
    }

    #[tokio::test]
    async fn a_streamed_upload_is_hashed_once_and_its_hash_is_of_the_stored_bytes() {
        for source in [H264, WEBM, MOOV_AT_END] {
            let dir = tempfile::tempdir().unwrap();
            let library = library(dir.path()).await;
            let bytes = std::fs::read(source).unwrap();
            let staged = stage(&library, u64::MAX, chunks(&bytes)).await.unwrap();
            let committed = commit(&library, staged, None, None).await.unwrap();
            // The faststart rewrite of the moov-at-end sample is the one pass that hashes it: the
            // stream showed its `mdat` first (in the first chunk) so it was not hashed as it came.
            assert_eq!(library.bytes_hashed(), bytes.len() as u64, "{source}");
            let (stored, actual) = hashes(&library, committed).await;
            assert_eq!(stored, actual, "{source}: the ETag hash is of the final bytes");
        }
    }

    #[tokio::test]
    async fn a_finished_resumable_upload_is_read_and_hashed_once() {
        for source in [H264, MOOV_AT_END] {
            let dir = tempfile::tempdir().unwrap();
            let library = library(dir.path()).await;
            let path = dir.path().join("tus-upload");
            std::fs::copy(source, &path).unwrap();
            let staged = Staged::from_file(path).await.unwrap();
            let committed = commit(&library, staged, None, None).await.unwrap();
            assert_eq!(library.bytes_hashed(), std::fs::metadata(source).unwrap().len(), "{source}");
            let (stored, actual) = hashes(&library, committed).await;
            assert_eq!(stored, actual, "{source}");
        }
    }
}
