//! Image processing without HTTP: probe, decode, resize and encode, on a bounded CPU pool.
//!
//! Every input is hostile until its header says otherwise: [`probe`] reads the format and the
//! declared size before a pixel is decoded, and [`decode`] refuses again under the decoders' own
//! allocation limits, so a decompression bomb costs milliseconds, not gigabytes. Orientation from
//! EXIF is applied and all metadata is dropped. The work itself runs on [`CpuPool`], never on
//! tokio's async workers, and a full queue is refused ([`ImageError::Busy`]) rather than queued.

mod decode;
mod encode;
mod error;
mod format;
mod jpeg;
mod limits;
mod pool;
mod transform;

pub(crate) use self::{
    decode::{decode, probe},
    encode::encode,
    error::ImageError,
    format::{Format, OutputFormat},
    limits::Limits,
    pool::CpuPool,
    transform::{Fit, resize},
};
