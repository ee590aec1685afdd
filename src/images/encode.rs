//! Encoding to the output formats, with no metadata carried over.

use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, RgbImage};

use super::{ImageError, OutputFormat};

/// WebP's own ceiling on either side (VP8 frame headers hold 14 bits).
const WEBP_MAX_SIDE: u32 = 16_383;

/// Encodes `image` as `format`; `quality` (clamped to 1–100) applies to JPEG and WebP.
///
/// JPEG has no alpha, so transparent pixels are flattened onto white, as a browser would show
/// them on a default page. WebP is lossy (libwebp) and keeps alpha. PNG is lossless.
pub(crate) fn encode(image: &DynamicImage, format: OutputFormat, quality: u8) -> Result<Bytes, ImageError> {
    let quality = quality.clamp(1, 100);
    let mut out = Vec::new();
    match format {
        OutputFormat::Jpeg => {
            let encoder = JpegEncoder::new_with_quality(&mut out, quality);
            match image {
                DynamicImage::ImageLuma8(gray) => gray.write_with_encoder(encoder),
                // No copy: at 49 MP one is 147 MB, which the memory budget does not count.
                DynamicImage::ImageRgb8(rgb) => rgb.write_with_encoder(encoder),
                _ if image.color().has_alpha() => flatten_on_white(image).write_with_encoder(encoder),
                _ => image.to_rgb8().write_with_encoder(encoder),
            }
            .map_err(|error| ImageError::Internal(format!("JPEG encoding: {error}")))?;
        }
        OutputFormat::WebP => out = encode_webp(image, quality)?,
        OutputFormat::Png => {
            // PNG holds 8- and 16-bit grey and RGB(A) as they are; only float needs converting,
            // and no decoder here produces it.
            let result = match image {
                DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
                    image.to_rgba8().write_with_encoder(PngEncoder::new(&mut out))
                }
                _ => image.write_with_encoder(PngEncoder::new(&mut out)),
            };
            result.map_err(|error| ImageError::Internal(format!("PNG encoding: {error}")))?;
        }
    }
    Ok(Bytes::from(out))
}

/// Lossy WebP through libwebp, since `image`'s own WebP encoder is lossless only.
fn encode_webp(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let (width, height) = (image.width(), image.height());
    if width > WEBP_MAX_SIDE || height > WEBP_MAX_SIDE {
        return Err(ImageError::Internal(format!(
            "{width}×{height} is over WebP's {WEBP_MAX_SIDE} px side limit"
        )));
    }
    let quality = f32::from(quality);
    // `encode_simple` rather than `encode`, which unwraps libwebp's error into a panic.
    let encoded = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        webp::Encoder::from_rgba(&rgba, width, height).encode_simple(false, quality)
    } else {
        let rgb = image.to_rgb8();
        webp::Encoder::from_rgb(&rgb, width, height).encode_simple(false, quality)
    };
    encoded
        .map(|memory| memory.to_vec())
        .map_err(|error| ImageError::Internal(format!("WebP encoding: {error:?}")))
}

/// Composites `image` over opaque white.
fn flatten_on_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        // c·α + 255·(1 − α), in integers with rounding; at most 255, so the cast is exact.
        let over_white = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

#[cfg(test)]
mod tests {
    use image::{Rgb, Rgba, RgbaImage};

    use super::*;

    /// A 200×150 image with gradients and texture, so that quality changes the size.
    fn photo() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(200, 150, |x, y| {
            Rgb([(x + y) as u8, (x * y % 251) as u8, ((x ^ y) * 3) as u8])
        }))
    }

    #[test]
    fn webp_is_riff_webp_and_decodes_to_the_same_size() {
        let bytes = encode(&photo(), OutputFormat::WebP, 80).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WEBP");
        // Lossy, not the lossless VP8L that `image` would write.
        assert_eq!(&bytes[12..16], b"VP8 ");
        let back = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
        assert_eq!((back.width(), back.height()), (200, 150));
    }

    #[test]
    fn webp_keeps_alpha() {
        let image = DynamicImage::ImageRgba8(RgbaImage::from_fn(32, 32, |x, _| {
            Rgba([200, 10, 10, if x < 16 { 255 } else { 0 }])
        }));
        let bytes = encode(&image, OutputFormat::WebP, 80).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(back.get_pixel(4, 4).0[3], 255);
        assert_eq!(back.get_pixel(28, 4).0[3], 0);
    }

    #[test]
    fn jpeg_starts_with_soi_and_decodes_to_the_same_size() {
        let bytes = encode(&photo(), OutputFormat::Jpeg, 80).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!((back.width(), back.height()), (200, 150));
    }

    #[test]
    fn lower_quality_is_smaller() {
        for format in [OutputFormat::Jpeg, OutputFormat::WebP] {
            let low = encode(&photo(), format, 30).unwrap().len();
            let high = encode(&photo(), format, 90).unwrap().len();
            assert!(low < high, "{format:?}: q30 {low} bytes, q90 {high} bytes");
        }
    }

    #[test]
    fn jpeg_flattens_transparency_on_white() {
        let image = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 0])));
        let bytes = encode(&image, OutputFormat::Jpeg, 90).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert!(back.get_pixel(8, 8).0.iter().all(|&c| c > 250), "{:?}", back.get_pixel(8, 8));
    }

    #[test]
    fn png_round_trips_losslessly() {
        let bytes = encode(&photo(), OutputFormat::Png, 0).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let back = image::load_from_memory(&bytes).unwrap();
        assert_eq!(back.to_rgb8(), photo().to_rgb8());
    }

    #[test]
    fn out_of_range_quality_is_clamped() {
        assert!(encode(&photo(), OutputFormat::Jpeg, 0).is_ok());
        assert!(encode(&photo(), OutputFormat::WebP, 255).is_ok());
    }
}
