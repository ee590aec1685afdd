//! The walls every input must stay within, checked on the header and again while decoding.

/// Size limits for one input image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Largest accepted file, in bytes.
    pub(crate) max_bytes: u64,
    /// Largest accepted width × height, as the header declares it.
    pub(crate) max_pixels: u64,
    /// Largest accepted width or height.
    pub(crate) max_dimension: u32,
    /// Frames decoded from an animation; decoding stops after the first whatever this says, so
    /// it documents the bound today and is the knob for animated output later.
    pub(crate) max_frames: u32,
    /// Most bytes a decoder may allocate at once, the output buffer included.
    pub(crate) max_alloc: u64,
    /// Largest accepted ICC profile, inflated.
    pub(crate) max_icc_profile: u64,
    /// Most bytes of PNG text and EXIF chunks, as stored.
    pub(crate) max_metadata: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Phone photos are 3–12 MB; 32 MiB leaves room for large PNGs without letting one
            // upload pin much memory while it is held for decoding.
            max_bytes: 32 * 1024 * 1024,
            // imgproxy's default (IMGPROXY_MAX_SRC_RESOLUTION = 50 MP): a 48 MP phone photo
            // passes, while 50 MP of RGBA is already 200 MB decoded.
            max_pixels: 50_000_000,
            // Also the WebP format's own ceiling (16383) rounded up, and libvips' default.
            max_dimension: 16_384,
            max_frames: 1,
            // image's default; 50 MP RGBA (200 MB) fits with room for decoder scratch.
            max_alloc: 512 * 1024 * 1024,
            // Firefox's qcms refuses profiles over 4 MiB; display profiles are 0.5–4 KiB and
            // the largest CMYK print profiles about 2 MB. Profiles are dropped, not applied.
            max_icc_profile: 4 * 1024 * 1024,
            // Room for the bloated XMP some editors write, while a decoder's copies of it stay
            // a few MB.
            max_metadata: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Refuses a declared `width`×`height` that is empty or over a side or pixel limit.
    pub(crate) fn check_dimensions(&self, width: u32, height: u32) -> Result<(), super::ImageError> {
        use super::ImageError;
        if width == 0 || height == 0 {
            return Err(ImageError::Corrupt(format!("the header declares {width}×{height} px")));
        }
        let max = self.max_dimension;
        if width > max || height > max {
            return Err(ImageError::TooLarge {
                reason: format!("{width}×{height} px: a side is over the {max} px limit"),
            });
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(ImageError::TooLarge {
                reason: format!(
                    "{width}×{height} is {pixels} pixels, over the {} pixel limit",
                    self.max_pixels
                ),
            });
        }
        Ok(())
    }

    /// Refuses a file longer than `max_bytes`.
    pub(crate) fn check_bytes(&self, len: usize) -> Result<(), super::ImageError> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        if len > self.max_bytes {
            return Err(super::ImageError::TooLarge {
                reason: format!("{len} bytes is over the {} byte limit", self.max_bytes),
            });
        }
        Ok(())
    }

    /// The same walls in the `image` crate's terms, for its decoders to enforce themselves.
    pub(crate) fn to_decoder_limits(&self) -> image::Limits {
        // `image::Limits` is non-exhaustive, so start from its default and overwrite.
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_dimension);
        limits.max_image_height = Some(self.max_dimension);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageError;

    #[test]
    fn defaults_follow_imgproxy_and_decode_one_frame() {
        let limits = Limits::default();
        assert_eq!(limits.max_pixels, 50_000_000);
        assert_eq!(limits.max_dimension, 16_384);
        assert_eq!(limits.max_frames, 1);
        assert_eq!(limits.max_alloc, 512 * 1024 * 1024);
    }

    #[test]
    fn a_48_megapixel_photo_passes() {
        assert!(Limits::default().check_dimensions(8000, 6000).is_ok());
    }

    #[test]
    fn too_large_names_the_limit_and_the_numbers() {
        let limits = Limits::default();
        let Err(ImageError::TooLarge { reason }) = limits.check_dimensions(20_000, 100) else {
            panic!("a 20000 px side passed");
        };
        assert!(reason.contains("20000×100") && reason.contains("16384"), "{reason}");
        let Err(ImageError::TooLarge { reason }) = limits.check_dimensions(10_000, 10_000) else {
            panic!("100 MP passed");
        };
        assert!(reason.contains("100000000 pixels") && reason.contains("50000000"), "{reason}");
        let Err(ImageError::TooLarge { reason }) = limits.check_bytes(40 << 20) else {
            panic!("40 MiB passed");
        };
        assert!(reason.contains("41943040 bytes"), "{reason}");
    }

    #[test]
    fn empty_image_is_corrupt() {
        assert!(matches!(Limits::default().check_dimensions(0, 10), Err(ImageError::Corrupt(_))));
    }
}
