//! The image service: uploads become stored masters and variants, and requests for other sizes
//! are made on demand, every decode admitted by the memory budget and run on the CPU pool.
//!
//! On disk, `<data_dir>/images/<id>/` holds `master.{jpg,png}` (orientation applied, metadata
//! stripped), the variants made at upload, `w{320,640,1280}.{webp,jpg}`, and `cache/` with
//! results made on demand. The directory is built under a temporary name and renamed into
//! place, so an image is there whole or not at all. A delete renames it out of the way before
//! the row goes, and is refused while a rendition of the image is being made ([`Activity`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::activity::Activity;
use super::{
    CpuPool, Fit, Header, ImageError, Limits, MemoryBudget, OutputFormat, decode, encode, probe, resize,
};
use crate::db::Db;
use crate::db::images::{ImageOwner, ImageRow};
use crate::db::now_secs;

/// Widths made at upload (when the image is wider), each as WebP and JPEG.
pub(crate) const VARIANT_WIDTHS: [u32; 3] = [320, 640, 1280];
/// Quality of stored variants and the default of on-demand output.
pub(crate) const DEFAULT_QUALITY: u8 = 80;
/// Quality of the stored master, from which every other size is made.
const MASTER_QUALITY: u8 = 92;
/// Jobs that may wait for a worker, and jobs that may wait for memory, before more are refused.
const QUEUE: usize = 64;
/// The longest a job waits for memory before its request is shed: past this a client is better
/// off retrying than holding its upload in memory.
const MAX_MEMORY_WAIT: Duration = Duration::from_secs(10);
/// Bytes of encoded results kept in memory.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The cache of on-demand results, weighted by their size in bytes.
type ResultCache = moka::sync::Cache<String, Bytes>;

/// A requested rendition of a stored image, validated by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rendition {
    /// The box's width; `None` is free.
    pub(crate) width: Option<u32>,
    /// The box's height; `None` is free.
    pub(crate) height: Option<u32>,
    /// How the image meets the box.
    pub(crate) fit: Fit,
    /// The output format.
    pub(crate) format: OutputFormat,
    /// The output quality, 1–100.
    pub(crate) quality: u8,
}

/// Image storage, workers, memory budget and the result cache.
pub(crate) struct ImageService {
    dir: PathBuf,
    db: Db,
    limits: Limits,
    pool: CpuPool,
    budget: MemoryBudget,
    cache: ResultCache,
    activity: Activity,
}

/// What the CPU pool hands back from an upload.
struct Processed {
    width: u32,
    height: u32,
    master: (Bytes, OutputFormat),
    variants: Vec<(String, Bytes)>,
}

impl ImageService {
    /// Images under `<data_dir>/images`, rows in `db`, one worker per core, jobs admitted by a
    /// `memory_budget` of bytes.
    pub(crate) fn new(data_dir: &Path, db: Db, memory_budget: u64) -> Arc<Self> {
        Arc::new(Self {
            dir: data_dir.join("images"),
            db,
            limits: Limits::default(),
            pool: CpuPool::new(CpuPool::default_threads(), QUEUE),
            budget: MemoryBudget::new(memory_budget, QUEUE, MAX_MEMORY_WAIT),
            cache: moka::sync::Cache::builder()
                .weigher(|_key: &String, bytes: &Bytes| u32::try_from(bytes.len()).unwrap_or(u32::MAX))
                .max_capacity(CACHE_BYTES)
                // A delete drops the image's results by key prefix.
                .support_invalidation_closures()
                .build(),
            activity: Activity::default(),
        })
    }

    /// The limits every input is held to.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Stores an uploaded image owned by `owner`: decoded once, its master and variants
    /// written, its row added. Nothing else can reach the image before its row exists, so an
    /// upload in progress cannot be edited or deleted.
    pub(crate) async fn upload(
        &self,
        data: Bytes,
        owner: Option<ImageOwner>,
    ) -> Result<ImageRow, ImageError> {
        let input_len = data.len();
        let (header, processed) = self.admitted(data, process).await?;
        let id = crate::id::random_id::<9>();
        let mut files = processed.variants;
        let (master, master_format) = processed.master;
        files.push((format!("master.{}", master_format.extension()), master));
        let (store, dir_id) = (self.dir.clone(), id.clone());
        tokio::task::spawn_blocking(move || write_image_dir(&store, &dir_id, &files))
            .await
            .map_err(|e| ImageError::Internal(format!("writing the image: {e}")))?
            .map_err(|e| ImageError::Internal(format!("writing the image: {e:#}")))?;
        let row = ImageRow {
            id,
            width: i64::from(processed.width),
            height: i64::from(processed.height),
            source: header.format.name().to_owned(),
            master: master_format.extension().to_owned(),
            bytes: i64::try_from(input_len).unwrap_or(i64::MAX),
            created_at: now_secs(),
            owner,
            alt: None,
        };
        self.db
            .images()
            .insert(&row)
            .await
            .map_err(|e| ImageError::Internal(format!("saving the image: {e}")))?;
        Ok(row)
    }

    /// The stored image `id`.
    pub(crate) async fn find(&self, id: &str) -> Result<ImageRow, ImageError> {
        self.db
            .images()
            .find(id)
            .await
            .map_err(|e| ImageError::Internal(format!("reading the image: {e}")))?
            .ok_or(ImageError::NotFound)
    }

    /// Sets the alternative text of image `id` and returns the image as it is now.
    pub(crate) async fn set_alt(&self, id: &str, alt: Option<&str>) -> Result<ImageRow, ImageError> {
        let found = self
            .db
            .images()
            .set_alt(id, alt)
            .await
            .map_err(|e| ImageError::Internal(format!("saving the alt text: {e}")))?;
        if !found {
            return Err(ImageError::NotFound);
        }
        self.find(id).await
    }

    /// Deletes image `id`: its directory (master, variants, disk cache), its row and its
    /// results in memory. Refused ([`ImageError::InUse`]) while a rendition of it is being made.
    ///
    /// The directory is renamed away first, so from then on nothing is served or written under
    /// the image's path; if the row cannot be deleted it is renamed back and the image stays
    /// whole. The renamed directory is removed last: a failure there leaves a `.deleting-` entry
    /// that nothing serves, and is logged.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), ImageError> {
        let _deleting = self.activity.delete(id)?;
        self.find(id).await?;
        let (live, trash) = (self.dir.join(id), self.dir.join(format!(".deleting-{id}")));
        let moved = match tokio::fs::rename(&live, &trash).await {
            Ok(()) => true,
            // A row without files (a directory lost by hand) is still deleted: nothing to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(ImageError::Internal(format!("moving the image's files away: {e}"))),
        };
        if let Err(error) = self.db.images().delete(id).await {
            if moved && let Err(back) = tokio::fs::rename(&trash, &live).await {
                tracing::error!(%back, id, "an image whose row could not be deleted lost its files");
            }
            return Err(ImageError::Internal(format!("deleting the image: {error}")));
        }
        let prefix = format!("{id}|");
        self.cache
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix))
            .map_err(|e| ImageError::Internal(format!("dropping the image's cached results: {e}")))?;
        if moved {
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&trash)).await;
            if let Err(error) = removed.map_err(std::io::Error::other).and_then(|r| r) {
                tracing::warn!(%error, id, "the files of a deleted image were not all removed");
            }
        }
        Ok(())
    }

    /// The image `row` as `rendition` asks: from memory, a stored variant, the disk cache, or
    /// made from the master (and then cached in memory and on disk).
    pub(crate) async fn render(&self, row: &ImageRow, rendition: Rendition) -> Result<Bytes, ImageError> {
        let Rendition { width, height, fit, format, quality } = rendition;
        let key = format!("{}|{width:?}|{height:?}|{fit:?}|{}|{quality}", row.id, format.extension());
        if let Some(bytes) = self.cache.get(&key) {
            return Ok(bytes);
        }
        // Held until the disk cache is written: a delete must not remove the directory under it.
        let rendering = self.activity.render(&row.id)?;
        let dir = self.dir.join(&row.id);
        // The row was read before this rendition was counted: a delete may have finished in
        // between, and then the directory is gone (renamed away before the delete ends).
        if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
            return Err(ImageError::NotFound);
        }
        // A variant made at upload, or one made on demand before (the disk cache outlives the
        // memory cache and restarts), answers without decoding anything.
        let cached = dir.join("cache").join(format!(
            "{}.{}",
            &blake3::hash(key.as_bytes()).to_hex()[..24],
            format.extension()
        ));
        let stored = match (width, height, quality, format) {
            (Some(w), None, DEFAULT_QUALITY, OutputFormat::WebP | OutputFormat::Jpeg)
                if VARIANT_WIDTHS.contains(&w) && i64::from(w) < row.width =>
            {
                tokio::fs::read(dir.join(format!("w{w}.{}", format.extension()))).await.ok()
            }
            _ => tokio::fs::read(&cached).await.ok(),
        };
        let bytes = match stored {
            Some(bytes) => {
                let bytes = Bytes::from(bytes);
                self.cache.insert(key, bytes.clone());
                bytes
            }
            None => {
                let master = tokio::fs::read(dir.join(format!("master.{}", row.master)))
                    .await
                    .map_err(|e| ImageError::Internal(format!("reading the master: {e}")))?;
                let (_, made) = self
                    .admitted(Bytes::from(master), move |data, _, limits| {
                        let image = decode(data, limits)?;
                        encode(&resize(&image, width, height, fit)?, format, quality)
                    })
                    .await?;
                // Into memory while still counted as rendering, so a delete's purge comes after.
                self.cache.insert(key, made.clone());
                // Best effort: a failed cache write costs a recomputation later, nothing else.
                let (path, copy) = (cached, made.clone());
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = crate::fs::write_atomic(&path, &copy, 0o644) {
                        tracing::warn!(%error, path = %path.display(), "image disk cache write failed");
                    }
                    drop(rendering);
                });
                made
            }
        };
        Ok(bytes)
    }

    /// Probes `data` on the pool (a PNG header read inflates its ICC profile), reserves the
    /// header's estimated peak from the memory budget, then runs `job` on the pool.
    async fn admitted<T: Send + 'static>(
        &self,
        data: Bytes,
        job: impl FnOnce(&[u8], &Header, &Limits) -> Result<T, ImageError> + Send + 'static,
    ) -> Result<(Header, T), ImageError> {
        let limits = self.limits.clone();
        let header = self
            .pool
            .run({
                let (data, limits) = (data.clone(), limits.clone());
                move || probe(&data, &limits)
            })
            .await??;
        let _reservation = self.budget.admit(header.peak_bytes(data.len())).await?;
        let out = self.pool.run(move || job(&data, &header, &limits)).await??;
        Ok((header, out))
    }
}

/// Decodes an upload and makes its master and variants.
fn process(data: &[u8], _: &Header, limits: &Limits) -> Result<Processed, ImageError> {
    let image = decode(data, limits)?;
    let master_format = if image.color().has_alpha() { OutputFormat::Png } else { OutputFormat::Jpeg };
    let master = encode(&image, master_format, MASTER_QUALITY)?;
    let mut variants = Vec::new();
    for width in VARIANT_WIDTHS.into_iter().filter(|&w| w < image.width()) {
        let resized = resize(&image, Some(width), None, Fit::Contain)?;
        for format in [OutputFormat::WebP, OutputFormat::Jpeg] {
            let encoded = encode(&resized, format, DEFAULT_QUALITY)?;
            variants.push((format!("w{width}.{}", format.extension()), encoded));
        }
    }
    Ok(Processed { width: image.width(), height: image.height(), master: (master, master_format), variants })
}

/// Writes the files into a temporary directory, syncs them, and renames it to `<store>/<id>`.
fn write_image_dir(store: &Path, id: &str, files: &[(String, Bytes)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(store)?;
    let staging = tempfile::Builder::new().prefix(".incoming-").tempdir_in(store)?;
    for (name, bytes) in files {
        let path = staging.path().join(name);
        std::fs::write(&path, bytes)?;
        std::fs::File::open(&path)?.sync_all()?;
    }
    std::fs::rename(staging.keep(), store.join(id))?;
    Ok(())
}

/// The image service's metrics (its memory budget), read at each `/metrics` scrape.
pub(crate) struct Metrics(Arc<ImageService>);

impl Metrics {
    /// The metrics of `service`.
    pub(crate) fn new(service: Arc<ImageService>) -> Self {
        Self(service)
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("image metrics")
    }
}

impl prometheus_client::collector::Collector for Metrics {
    fn encode(&self, encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.0.budget.encode(encoder)
    }
}
