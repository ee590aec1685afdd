//! Resizing: fit inside a box or cover it exactly, never enlarging.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use super::ImageError;

/// How the image meets a requested box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Scale to fit inside the box, keeping the aspect ratio; one side may come out shorter.
    Contain,
    /// Scale to fill the box and crop the overflow from the centre, so the output is exactly the
    /// box.
    Cover,
}

/// Resizes to the box `w`×`h` (a missing or zero side is free, keeping the aspect ratio), never
/// upscaling.
///
/// When `Cover` would need enlarging, the output keeps the requested aspect ratio at the
/// largest size the source holds (100×50 covering 200×200 gives the centre 50×50), as imgproxy
/// does without `enlarge`.
pub(crate) fn resize(
    image: &DynamicImage,
    w: Option<u32>,
    h: Option<u32>,
    fit: Fit,
) -> Result<DynamicImage, ImageError> {
    let (src_w, src_h) = (image.width(), image.height());
    let (w, h) = (w.filter(|&w| w > 0), h.filter(|&h| h > 0));
    let (dst_w, dst_h, crop) = match (fit, w, h) {
        (_, None, None) => (src_w, src_h, false),
        (Fit::Cover, Some(w), Some(h)) => {
            // Scale the box down until the source contains it.
            let shrink = (f64::from(src_w) / f64::from(w)).min(f64::from(src_h) / f64::from(h)).min(1.0);
            (scaled(w, shrink), scaled(h, shrink), true)
        }
        // Contain, or Cover with a free side (nothing to crop): the largest fit, capped at 1.
        (_, w, h) => {
            let ratio = |box_side: Option<u32>, side: u32| {
                box_side.map_or(f64::INFINITY, |b| f64::from(b) / f64::from(side))
            };
            let scale = ratio(w, src_w).min(ratio(h, src_h)).min(1.0);
            (scaled(src_w, scale), scaled(src_h, scale), false)
        }
    };
    if (dst_w, dst_h) == (src_w, src_h) {
        return Ok(image.clone());
    }

    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    if crop {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    let mut out = DynamicImage::new(dst_w, dst_h, image.color());
    Resizer::new()
        .resize(image, &mut out, &options)
        .map_err(|error| ImageError::Internal(format!("resizing to {dst_w}×{dst_h}: {error}")))?;
    Ok(out)
}

/// `side` × `scale`, rounded, and never below one pixel (a 10000×1 strip still has a row).
fn scaled(side: u32, scale: f64) -> u32 {
    // In range: `scale` ≤ 1, so the product is at most `side`.
    ((f64::from(side) * scale).round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use image::{GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    fn size(image: &DynamicImage) -> (u32, u32) {
        (image.width(), image.height())
    }

    #[test]
    fn width_only_keeps_the_aspect_ratio() {
        let image = DynamicImage::new_rgb8(1280, 720);
        assert_eq!(size(&resize(&image, Some(320), None, Fit::Contain).unwrap()), (320, 180));
        assert_eq!(size(&resize(&image, None, Some(90), Fit::Cover).unwrap()), (160, 90));
    }

    #[test]
    fn contain_fits_inside_the_box() {
        let image = DynamicImage::new_rgb8(1280, 720);
        assert_eq!(size(&resize(&image, Some(200), Some(200), Fit::Contain).unwrap()), (200, 113));
    }

    #[test]
    fn cover_fills_the_box_exactly_from_the_centre() {
        // Left third red, middle third green, right third blue: the centre crop is green.
        let image = DynamicImage::ImageRgb8(RgbImage::from_fn(1280, 720, |x, _| match x * 3 / 1280 {
            0 => Rgb([255, 0, 0]),
            1 => Rgb([0, 255, 0]),
            _ => Rgb([0, 0, 255]),
        }));
        let out = resize(&image, Some(200), Some(200), Fit::Cover).unwrap();
        assert_eq!(size(&out), (200, 200));
        let rgb = out.to_rgb8();
        assert_eq!(rgb.get_pixel(100, 100).0, [0, 255, 0]);
        // 720 of 1280 columns were kept, so the edges hold the outer thirds' tips.
        assert!(rgb.get_pixel(0, 100).0[0] > 200, "{:?}", rgb.get_pixel(0, 100));
        assert!(rgb.get_pixel(199, 100).0[2] > 200, "{:?}", rgb.get_pixel(199, 100));
    }

    #[test]
    fn never_upscales() {
        let image = DynamicImage::new_rgb8(100, 50);
        assert_eq!(size(&resize(&image, Some(320), None, Fit::Contain).unwrap()), (100, 50));
        assert_eq!(size(&resize(&image, Some(320), Some(320), Fit::Contain).unwrap()), (100, 50));
        // Cover keeps the box's shape at the source's scale instead of enlarging.
        assert_eq!(size(&resize(&image, Some(200), Some(200), Fit::Cover).unwrap()), (50, 50));
        assert_eq!(size(&resize(&image, None, None, Fit::Cover).unwrap()), (100, 50));
    }

    #[test]
    fn zero_sides_are_free_and_thin_strips_keep_a_row() {
        let image = DynamicImage::new_rgb8(1000, 2);
        assert_eq!(size(&resize(&image, Some(10), Some(0), Fit::Contain).unwrap()), (10, 1));
    }

    #[test]
    fn transparent_edges_do_not_darken_when_resized() {
        // Half opaque white, half fully transparent black: premultiplied resizing must not
        // bleed the transparent black into the white.
        let image = DynamicImage::ImageRgba8(RgbaImage::from_fn(64, 64, |x, _| {
            if x < 32 { Rgba([255, 255, 255, 255]) } else { Rgba([0, 0, 0, 0]) }
        }));
        let out = resize(&image, Some(16), None, Fit::Contain).unwrap();
        assert_eq!(out.color(), image::ColorType::Rgba8);
        let Rgba([r, _, _, a]) = out.get_pixel(7, 8);
        assert!(a > 0 && r > 250, "edge pixel {:?}", out.get_pixel(7, 8));
    }
}
