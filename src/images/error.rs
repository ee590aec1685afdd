//! Why an image could not be processed, in the terms the HTTP layer maps to status codes.

/// A failure to probe, decode, transform or encode an image, or to schedule the work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// The bytes are not a JPEG, PNG, WebP or GIF, or use a variant the decoders cannot read.
    #[error("not a supported image (JPEG, PNG, WebP or GIF)")]
    Unsupported,
    /// The file, its pixel count or one of its sides is over a limit; `reason` names it.
    #[error("image too large: {reason}")]
    TooLarge {
        /// Which limit was exceeded, with the numbers.
        reason: String,
    },
    /// The bytes claim a supported format but do not decode (truncated, malformed).
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// No stored image has this id.
    #[error("no such image")]
    NotFound,
    /// The image is in use by a job that a delete must not cut short (a rendition being made,
    /// another delete); the message says which, and the client may retry.
    #[error("{0}")]
    InUse(&'static str),
    /// The CPU pool's queue is full, or the memory budget stayed taken too long; the caller
    /// should shed the request (503).
    #[error("image workers are busy")]
    Busy,
    /// A failure that is ours, not the input's (an encoder error, a lost worker).
    #[error("image processing failed: {0}")]
    Internal(String),
}

impl ImageError {
    /// Classifies an error from the `image` crate raised while reading input.
    pub(crate) fn from_decoding(error: image::ImageError) -> Self {
        use image::ImageError as E;
        match error {
            E::Limits(limit) => Self::TooLarge { reason: format!("decoder limit: {limit}") },
            E::Unsupported(_) => Self::Unsupported,
            // A parameter error while reading means the file is inconsistent with itself
            // (a GIF without frames, a buffer that does not match the header).
            E::Decoding(_) | E::Parameter(_) | E::IoError(_) => Self::Corrupt(error.to_string()),
            E::Encoding(_) => Self::Internal(error.to_string()),
        }
    }
}
