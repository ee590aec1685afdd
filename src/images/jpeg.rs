//! JPEG completeness: whether the marker structure reaches its end-of-image marker.
//!
//! `image` runs zune-jpeg in lenient mode, which paints the missing part of a truncated file
//! grey and reports success; a cut-off upload would then be served as a half-grey picture.

/// Whether `bytes` (a JPEG, starting with SOI) reaches EOI through its segments and scans.
///
/// Segments are skipped by their lengths, so an EOI inside an embedded EXIF thumbnail does not
/// count; entropy-coded data is scanned for the next real marker (not a stuffed `FF 00` or a
/// restart marker). Bytes after EOI are ignored: phones append trailers and motion videos there.
pub(crate) fn is_complete(bytes: &[u8]) -> bool {
    let mut at = 2; // past SOI
    loop {
        // Lenient like the decoder: skip stray bytes up to the next marker, then its fill bytes.
        let Some(skip) = bytes.get(at..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) else {
            return false;
        };
        at += skip;
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else { return false };
        at += 1;
        match marker {
            0xD9 => return true,
            // Standalone markers: RST0–7, TEM, and 00 (a stuffed byte outside a scan).
            0xD0..=0xD7 | 0x01 | 0x00 => continue,
            _ => {}
        }
        let Some(&[high, low]) = bytes.get(at..at + 2) else { return false };
        // The length counts its own two bytes.
        at += usize::from(u16::from_be_bytes([high, low]).max(2));
        if marker == 0xDA {
            let Some(end) = scan_end(bytes, at) else { return false };
            at = end;
        }
    }
}

/// The offset of the marker that ends the entropy-coded data starting at `at`.
fn scan_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += bytes.get(at..)?.iter().position(|&b| b == 0xFF)?;
        match bytes.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => at += 2,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use image::codecs::jpeg::JpegEncoder;
    use image::{Rgb, RgbImage};

    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 85).encode_image(&image).unwrap();
        out
    }

    #[test]
    fn whole_jpeg_is_complete_and_every_cut_is_not() {
        let whole = jpeg(48, 32);
        assert!(is_complete(&whole));
        for len in 2..whole.len() - 1 {
            assert!(!is_complete(&whole[..len]), "cut at {len} of {}", whole.len());
        }
    }

    #[test]
    fn trailing_bytes_after_eoi_are_fine() {
        let mut with_trailer = jpeg(16, 16);
        with_trailer.extend_from_slice(b"\0\0ftypmp42 motion photo trailer");
        assert!(is_complete(&with_trailer));
    }

    #[test]
    fn thumbnail_eoi_inside_app1_does_not_count() {
        let thumbnail = jpeg(8, 8);
        let main = jpeg(64, 64);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&u16::try_from(thumbnail.len() + 2).unwrap().to_be_bytes());
        app1.extend_from_slice(&thumbnail);
        let mut file = main[..2].to_vec();
        file.extend_from_slice(&app1);
        file.extend_from_slice(&main[2..main.len() / 2]);
        assert!(!is_complete(&file));
    }
}
