//! Reading untrusted bytes: the header first, pixels only once the header is within limits.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::{Format, ImageError, Limits, jpeg, metadata};

/// The most RGBA bytes the `gif` crate decodes into per frame: its default memory limit, which
/// `image`'s `GifDecoder` offers no way to raise. A larger GIF would fail mid-decode as if it were
/// corrupt, so it is refused on the header as too large instead (12.5 MP).
const GIF_MAX_FRAME_BYTES: u64 = 50_000_000;

/// What a header declares, read before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The format, from the magic bytes.
    pub(crate) format: Format,
    /// Declared width (for a GIF, the logical screen's), before orientation.
    pub(crate) width: u32,
    /// Declared height, before orientation.
    pub(crate) height: u32,
    /// Bytes of the decoded pixels: width × height × bytes per pixel of the decoder's output.
    pub(crate) decoded_bytes: u64,
    /// Whether the pixels have an alpha channel.
    pub(crate) has_alpha: bool,
    /// Whether the EXIF orientation turns the image by a quarter, swapping its sides.
    pub(crate) quarter_turn: bool,
}

impl Header {
    /// The most memory processing this image may take at once, `input_len` bytes of it
    /// included: the input, the decoded pixels, and either a second full buffer (a quarter turn
    /// builds a new one; with alpha the resizer premultiplies a full copy and the PNG master is
    /// held while variants are made) or half of one (resize scratch, the encoded master,
    /// decoder scratch such as WebP's YUV planes), plus 1 MiB of fixed overhead.
    pub(crate) fn peak_bytes(&self, input_len: usize) -> u64 {
        let decoded = self.decoded_bytes;
        let extra = if self.has_alpha || self.quarter_turn { decoded } else { decoded / 2 };
        (input_len as u64).saturating_add(decoded).saturating_add(extra).saturating_add(1 << 20)
    }
}

/// Reads the header only: the format, the declared size and what decoding will hold.
///
/// Header reads are bounded: JPEG stops at the first scan, PNG at the first `IDAT` (with the
/// IHDR checked before anything else and its metadata measured first, see `metadata`), WebP
/// walks chunk headers, GIF stops at the first image descriptor.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, ImageError> {
    let (format, mut decoder) = open(bytes, limits)?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let orientation = decoder.orientation().map_err(ImageError::from_decoding)?;
    let quarter_turn = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    Ok(Header {
        format,
        width,
        height,
        decoded_bytes: decoder.total_bytes(),
        has_alpha: color.has_alpha(),
        quarter_turn,
    })
}

/// Decodes with strict limits, applies the EXIF orientation and drops all metadata.
///
/// Only the first frame of an animation is decoded. ICC profiles are dropped with the rest, so
/// wide-gamut sources are read as sRGB.
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, ImageError> {
    let (format, mut decoder) = open(bytes, limits)?;
    if format == Format::Jpeg && !jpeg::is_complete(bytes) {
        return Err(ImageError::Corrupt("the JPEG ends before its end-of-image marker".to_owned()));
    }
    // The second wall: the decoder may allocate `max_alloc` in all, output buffer included, as
    // `ImageReader::decode` does; `DynamicImage::from_decoder` alone would not reserve it.
    let mut decoder_limits = limits.to_decoder_limits();
    let total = decoder.total_bytes();
    decoder_limits.reserve(total).map_err(|_| ImageError::TooLarge {
        reason: format!("decoding needs {total} bytes, over the {} byte allocation limit", limits.max_alloc),
    })?;
    decoder.set_limits(decoder_limits).map_err(ImageError::from_decoding)?;
    let orientation = decoder.orientation().map_err(ImageError::from_decoding)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(ImageError::from_decoding)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Identifies the format and builds its decoder, which reads and checks the header only.
fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<(Format, impl ImageDecoder + 'a), ImageError> {
    limits.check_bytes(bytes.len())?;
    let format = Format::from_magic(bytes).ok_or(ImageError::Unsupported)?;
    if format == Format::Png {
        metadata::check_png(bytes, limits)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.into_image_format());
    // PNG must get the side limits now: its decoder checks them on the IHDR, before reading on
    // to the first IDAT. The others read their header first, so they are checked just below,
    // where the refusal can quote the declared size, and strictly again in `decode`.
    let mut header_limits = limits.to_decoder_limits();
    if format != Format::Png {
        header_limits.max_image_width = None;
        header_limits.max_image_height = None;
    }
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(|error| match error {
        // Only the PNG path gets here, before the declared size is known to us.
        image::ImageError::Limits(ref limit)
            if limit.kind() == image::error::LimitErrorKind::DimensionError =>
        {
            ImageError::TooLarge {
                reason: format!("the header declares a side over the {} px limit", limits.max_dimension),
            }
        }
        other => ImageError::from_decoding(other),
    })?;
    let (width, height) = decoder.dimensions();
    limits.check_dimensions(width, height)?;
    if matches!(format, Format::Jpeg | Format::WebP) {
        // Stored uncompressed, so bounded by the file; refused for the same limit as PNG's.
        let profile = decoder.icc_profile().map_err(ImageError::from_decoding)?;
        metadata::check_profile_len(profile.map_or(0, |p| p.len()), limits)?;
    }
    let rgba_bytes = u64::from(width) * u64::from(height) * 4;
    if format == Format::Gif && rgba_bytes > GIF_MAX_FRAME_BYTES {
        return Err(ImageError::TooLarge {
            reason: format!(
                "a {width}×{height} GIF frame needs {rgba_bytes} bytes, over the GIF decoder's \
                 {GIF_MAX_FRAME_BYTES} byte limit"
            ),
        });
    }
    Ok((format, decoder))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use image::codecs::gif::GifEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use image::{Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

    use kino_test_support::zlib_zeros;

    use super::*;

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    /// A 40×20 photo-like JPEG: left half red, right half blue.
    fn landscape_jpeg() -> Vec<u8> {
        let image =
            RgbImage::from_fn(40, 20, |x, _| if x < 20 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image).unwrap();
        out
    }

    /// CRC-32 (ISO-HDLC) as PNG chunks use it, bit by bit: test inputs are tiny.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// The PNG signature and an IHDR for an 8-bit greyscale `width`×`height` image.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        // Bit depth 8, colour type 0 (greyscale), deflate, adaptive filters, no interlace.
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        out
    }

    /// A complete, valid all-black 8-bit greyscale PNG of any size, a few MB at most.
    fn black_png(width: u32, height: u32) -> Vec<u8> {
        let mut out = png_header(width, height);
        // Each row is a filter-type byte (0, none) and `width` zero samples.
        let raw = u64::from(height) * (u64::from(width) + 1);
        png_chunk(&mut out, b"IDAT", &zlib_zeros(raw));
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    fn declared(header: Header) -> (Format, u32, u32) {
        (header.format, header.width, header.height)
    }

    /// A 1×1 greyscale PNG whose `iCCP` profile inflates to `profile_len` zero bytes.
    fn png_with_profile(profile_len: u64) -> Vec<u8> {
        let mut out = png_header(1, 1);
        let mut iccp = b"bomb\0\0".to_vec();
        iccp.extend_from_slice(&zlib_zeros(profile_len));
        png_chunk(&mut out, b"iCCP", &iccp);
        png_chunk(&mut out, b"IDAT", &zlib_zeros(2));
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn icc_profile_inflating_to_1_gib_is_too_large_at_probe_in_milliseconds() {
        let bomb = png_with_profile(1 << 30);
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        let (result, elapsed) = timed(|| probe(&bomb, &Limits::default()));
        eprintln!("{} byte PNG with a 1 GiB profile refused in {elapsed:?}", bomb.len());
        let Err(ImageError::TooLarge { reason }) = &result else { panic!("{result:?}") };
        assert!(reason.contains("ICC profile"), "{reason}");
        assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
        // A real-sized profile is fine and dropped.
        assert_eq!(decode(&png_with_profile(3144), &Limits::default()).unwrap().width(), 1);
    }

    #[test]
    fn header_reports_what_decoding_holds() {
        let rgba = encoded(&DynamicImage::new_rgba8(10, 10), ImageFormat::Png);
        let header = probe(&rgba, &Limits::default()).unwrap();
        assert_eq!((header.decoded_bytes, header.has_alpha, header.quarter_turn), (400, true, false));
        assert_eq!(header.peak_bytes(100), 100 + 400 + 400 + (1 << 20));
        let grey = probe(&black_png(100, 10), &Limits::default()).unwrap();
        assert_eq!((grey.decoded_bytes, grey.has_alpha), (1000, false));
        assert_eq!(grey.peak_bytes(0), 1000 + 500 + (1 << 20));
    }

    fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
        let start = Instant::now();
        let out = f();
        (out, start.elapsed())
    }

    #[test]
    fn probe_reports_format_and_size_of_each_input_format() {
        let image = DynamicImage::new_rgba8(7, 5);
        for (format, expected) in [
            (ImageFormat::Png, Format::Png),
            (ImageFormat::Gif, Format::Gif),
            (ImageFormat::WebP, Format::WebP),
        ] {
            let bytes = encoded(&image, format);
            assert_eq!(declared(probe(&bytes, &Limits::default()).unwrap()), (expected, 7, 5));
        }
        assert_eq!(declared(probe(&landscape_jpeg(), &Limits::default()).unwrap()), (Format::Jpeg, 40, 20));
    }

    #[test]
    fn text_is_unsupported() {
        let text = b"<html><body>definitely not a picture</body></html>";
        assert!(matches!(probe(text, &Limits::default()), Err(ImageError::Unsupported)));
        assert!(matches!(decode(text, &Limits::default()), Err(ImageError::Unsupported)));
    }

    #[test]
    fn file_over_the_byte_limit_is_too_large_before_parsing() {
        let limits = Limits { max_bytes: 100, ..Limits::default() };
        let bytes = encoded(&DynamicImage::new_rgb8(64, 64), ImageFormat::Png);
        assert!(matches!(probe(&bytes, &limits), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn png_header_claiming_100000_squared_is_too_large_at_probe_in_milliseconds() {
        // Nothing after the IHDR: refusing must not need the pixel data, let alone decode it.
        let bomb = png_header(100_000, 100_000);
        let (result, elapsed) = timed(|| probe(&bomb, &Limits::default()));
        eprintln!("100000×100000 IHDR refused in {elapsed:?}");
        assert!(matches!(result, Err(ImageError::TooLarge { .. })), "{result:?}");
        assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
        assert!(matches!(decode(&bomb, &Limits::default()), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn jpeg_and_webp_headers_claiming_huge_sizes_are_too_large_at_probe() {
        // The 40×20 JPEG with its SOF0 frame header rewritten to declare 60000×60000.
        let mut jpeg = landscape_jpeg();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        let (result, elapsed) = timed(|| probe(&jpeg, &Limits::default()));
        eprintln!("60000×60000 JPEG header refused in {elapsed:?}");
        let Err(ImageError::TooLarge { reason }) = &result else { panic!("{result:?}") };
        assert!(reason.contains("60000×60000"), "{reason}");

        // A lossless WebP whose VP8L header declares 16383×16383 (268 MP, over the 50 MP limit).
        // Not 16384: image-webp 0.2 reads that side as 0, which `check_dimensions` calls corrupt.
        let mut webp = encoded(&DynamicImage::new_rgb8(4, 4), ImageFormat::WebP);
        assert_eq!(&webp[12..16], b"VP8L");
        let sides = (16_382u32 << 14) | 16_382; // 14 bits each, minus one
        let packed = u32::from_le_bytes(webp[21..25].try_into().unwrap()) & !0x0FFF_FFFF | sides;
        webp[21..25].copy_from_slice(&packed.to_le_bytes());
        let result = probe(&webp, &Limits::default());
        let Err(ImageError::TooLarge { reason }) = &result else { panic!("{result:?}") };
        assert!(reason.contains("268402689 pixels"), "{reason}");
    }

    #[test]
    fn hand_built_black_png_is_valid() {
        // Proves the generator behind the bomb test writes PNGs that really decode.
        let image = decode(&black_png(300, 200), &Limits::default()).unwrap();
        assert_eq!((image.width(), image.height()), (300, 200));
        assert!(image.as_bytes().iter().all(|&b| b == 0));
    }

    #[test]
    fn valid_20000_squared_black_png_is_too_large_at_probe() {
        let bomb = black_png(20_000, 20_000);
        eprintln!("20000×20000 black PNG: {} bytes for 400 MP", bomb.len());
        assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());

        // With the default 16384 px side limit the header fails on the side…
        let (result, elapsed) = timed(|| probe(&bomb, &Limits::default()));
        eprintln!("20000×20000 PNG refused by the side limit in {elapsed:?}");
        assert!(matches!(result, Err(ImageError::TooLarge { .. })), "{result:?}");

        // …and with the side limit lifted, the pixel limit refuses it: 400 MP > 50 MP.
        let sides_unlimited = Limits { max_dimension: u32::MAX, ..Limits::default() };
        let (result, elapsed) = timed(|| probe(&bomb, &sides_unlimited));
        eprintln!("20000×20000 PNG refused by the pixel limit in {elapsed:?}");
        let Err(ImageError::TooLarge { reason }) = result else {
            panic!("400 MP passed: {result:?}");
        };
        assert!(reason.contains("400000000 pixels"), "{reason}");
        assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
        assert!(matches!(decode(&bomb, &sides_unlimited), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn decoder_allocation_limit_is_a_second_wall() {
        // 3000×3000 passes the header checks, but its 9 MB of pixels exceed a 1 MB budget.
        let limits = Limits { max_alloc: 1 << 20, ..Limits::default() };
        let result = decode(&black_png(3000, 3000), &limits);
        assert!(matches!(result, Err(ImageError::TooLarge { .. })), "{result:?}");
    }

    #[test]
    fn truncated_jpeg_is_corrupt_not_a_panic() {
        let noise = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 4) as u8, (y * 4) as u8, (x ^ y) as u8]));
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&noise).unwrap();
        let result = decode(&jpeg[..jpeg.len() / 2], &Limits::default());
        // `.err()`: a wrongly decoded image would print every pixel.
        assert!(matches!(result, Err(ImageError::Corrupt(_))), "{:?}", result.err());
    }

    #[test]
    fn truncated_png_webp_and_gif_are_corrupt_not_a_panic() {
        let noise = DynamicImage::ImageRgba8(RgbaImage::from_fn(64, 64, |x, y| {
            Rgba([(x * 4) as u8, (y * 4) as u8, (x ^ y) as u8, 255])
        }));
        for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let bytes = encoded(&noise, format);
            let result = decode(&bytes[..bytes.len() / 2], &Limits::default());
            assert!(matches!(result, Err(ImageError::Corrupt(_))), "{format:?}: {:?}", result.err());
        }
    }

    #[test]
    fn gif_with_3000_frames_decodes_only_the_first_quickly() {
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
            let frames = (0..3000u32).map(|i| {
                let shade = (i % 200) as u8 + 50;
                Frame::new(RgbaImage::from_pixel(16, 8, Rgba([shade, 0, 0, 255])))
            });
            encoder.encode_frames(frames).unwrap();
        }
        let (image, elapsed) = timed(|| decode(&gif, &Limits::default()));
        eprintln!("3000-frame GIF ({} bytes) decoded in {elapsed:?}", gif.len());
        let image = image.unwrap();
        assert_eq!((image.width(), image.height()), (16, 8));
        // The first frame's colour, not a later one's.
        assert_eq!(image.to_rgba8().get_pixel(3, 3).0[0], 50);
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    }

    /// A GIF with a `width`×`height` logical screen and one 1×1 frame.
    fn gif_with_screen(width: u16, height: u16) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&width.to_le_bytes());
        gif.extend_from_slice(&height.to_le_bytes());
        // A global palette of two colours (black, white), background 0, square pixels.
        gif.extend_from_slice(&[0x80, 0x00, 0x00, 0, 0, 0, 255, 255, 255]);
        // Image descriptor for a 1×1 frame at 0,0, no local palette, then LZW minimum code size 2
        // and one data sub-block (clear, index 0, end).
        gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00]);
        gif.push(0x3B); // trailer
        gif
    }

    #[test]
    fn gif_logical_screen_over_the_limits_is_refused() {
        let (result, elapsed) = timed(|| probe(&gif_with_screen(65_535, 65_535), &Limits::default()));
        eprintln!("65535×65535 GIF screen refused in {elapsed:?}");
        let Err(ImageError::TooLarge { reason }) = &result else { panic!("{result:?}") };
        assert!(reason.contains("65535×65535"), "{reason}");
        // 16 MP is within the general limits but over what the GIF decoder will allocate.
        let result = decode(&gif_with_screen(4000, 4000), &Limits::default());
        let Err(ImageError::TooLarge { reason }) = &result else { panic!("{:?}", result.err()) };
        assert!(reason.contains("GIF"), "{reason}");
    }

    #[test]
    fn small_frame_on_a_larger_gif_screen_decodes_to_the_screen_size() {
        let image = decode(&gif_with_screen(300, 200), &Limits::default()).unwrap();
        assert_eq!((image.width(), image.height()), (300, 200));
    }

    /// An APP1 segment holding EXIF with only Orientation (tag 0x0112, SHORT) = `orientation`.
    fn exif_app1(orientation: u16) -> Vec<u8> {
        let mut tiff = b"II\x2A\x00".to_vec(); // little-endian TIFF
        tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
        tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes()); // one value…
        tiff.extend_from_slice(&u32::from(orientation).to_le_bytes()); // …stored inline
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&tiff);
        let mut segment = vec![0xFF, 0xE1];
        // The length counts itself but not the marker.
        segment.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        segment.extend_from_slice(&payload);
        segment
    }

    #[test]
    fn exif_orientation_6_turns_a_40x20_jpeg_into_20x40() {
        let plain = landscape_jpeg();
        let mut rotated = plain[..2].to_vec(); // SOI
        rotated.extend_from_slice(&exif_app1(6));
        rotated.extend_from_slice(&plain[2..]);

        // The header still says 40×20: orientation is applied to pixels, not declared sizes.
        let header = probe(&rotated, &Limits::default()).unwrap();
        assert_eq!(declared(header), (Format::Jpeg, 40, 20));
        assert!(header.quarter_turn);
        let image = decode(&rotated, &Limits::default()).unwrap().to_rgb8();
        assert_eq!((image.width(), image.height()), (20, 40));
        // 90° clockwise: the left (red) half is now on top.
        assert!(image.get_pixel(10, 5).0[0] > 200, "{:?}", image.get_pixel(10, 5));
        assert!(image.get_pixel(10, 35).0[2] > 200, "{:?}", image.get_pixel(10, 35));

        let unrotated = decode(&plain, &Limits::default()).unwrap();
        assert_eq!((unrotated.width(), unrotated.height()), (40, 20));
    }
}
