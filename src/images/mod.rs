//! Image processing without HTTP: probe, decode, resize and encode, on a bounded CPU pool, and
//! the [`ImageService`] that stores uploads and makes renditions with them.
//!
//! Every input is hostile until its header says otherwise: [`probe`] reads the format, the
//! declared size and the metadata sizes before a pixel is decoded, and [`decode`] refuses again
//! under the decoders' own allocation limits, so a decompression bomb (pixels or an ICC profile)
//! costs milliseconds, not gigabytes. Orientation from EXIF is applied and all metadata is
//! dropped. All of it, probing included, runs on [`CpuPool`], never on tokio's async workers; a
//! full queue is refused ([`ImageError::Busy`]) rather than queued, and each job first reserves
//! its estimated peak memory from one [`MemoryBudget`].

mod activity;
mod budget;
mod decode;
mod encode;
mod error;
mod format;
mod jpeg;
mod limits;
mod metadata;
mod pool;
mod service;
mod transform;

pub(crate) use self::{
    budget::MemoryBudget,
    decode::{Header, decode, probe},
    encode::encode,
    error::ImageError,
    format::{Format, OutputFormat},
    limits::Limits,
    pool::CpuPool,
    service::{DEFAULT_QUALITY, ImageService, Metrics, Rendition, VARIANT_WIDTHS},
    transform::{Fit, resize},
};
