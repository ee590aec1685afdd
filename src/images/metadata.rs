//! Metadata walls: ICC profiles, text and EXIF are measured before a decoder keeps a copy.
//!
//! The pixel limits say nothing about metadata, and PNG's is compressed: a 1 MB `iCCP` chunk
//! can inflate to 1 GiB, which the `png` crate inflates while reading the header, bounded only
//! by its allocation limit (the whole pixel budget). So a PNG's chunks are walked first (chunk
//! headers only) and its profile inflated here under a small bound; the decoder then meets
//! nothing larger than these limits. Text (`tEXt`, `zTXt`, `iTXt`) and `eXIf` are kept by the
//! decoder as stored (the `png` crate inflates text only on request, which nothing here makes),
//! so their stored size is what is bounded.

use super::{ImageError, Limits};

/// The PNG signature that precedes the first chunk.
const PNG_SIGNATURE: usize = 8;
/// A chunk's length and type before its data, and the CRC after it.
const CHUNK_HEADER: usize = 8;
const CHUNK_CRC: usize = 4;

/// Refuses a PNG whose ICC profile inflates over `max_icc_profile`, or whose text and EXIF
/// chunks hold over `max_metadata` bytes in all.
///
/// A malformed chunk structure is left to the decoder to report; only sizes are judged here.
pub(crate) fn check_png(bytes: &[u8], limits: &Limits) -> Result<(), ImageError> {
    let mut at = PNG_SIGNATURE;
    let mut stored: u64 = 0;
    while let Some(header) = bytes.get(at..at + CHUNK_HEADER) {
        let len = u32::from_be_bytes(header[..4].try_into().expect("four bytes")) as usize;
        let kind: [u8; 4] = header[4..].try_into().expect("four bytes");
        let start = at + CHUNK_HEADER;
        // A chunk running past the end is the decoder's to call truncated.
        let data = &bytes[start..start.saturating_add(len).min(bytes.len())];
        match &kind {
            b"iCCP" => check_png_profile(data, limits)?,
            b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" => {
                stored += data.len() as u64;
                if stored > limits.max_metadata {
                    return Err(ImageError::TooLarge {
                        reason: format!(
                            "the text and EXIF chunks hold over {} bytes, the metadata limit",
                            limits.max_metadata
                        ),
                    });
                }
            }
            b"IEND" => break,
            _ => {}
        }
        at = start.saturating_add(len).saturating_add(CHUNK_CRC);
    }
    Ok(())
}

/// Inflates an `iCCP` chunk's profile (a keyword, a NUL, the method byte, then zlib) to at most
/// one byte over the limit, so a bomb costs `max_icc_profile` bytes and a few milliseconds.
fn check_png_profile(data: &[u8], limits: &Limits) -> Result<(), ImageError> {
    // A chunk without the NUL or method byte is corrupt; the decoder ignores such a profile.
    let Some(nul) = data.iter().take(80).position(|&b| b == 0) else { return Ok(()) };
    let Some(stream) = data.get(nul + 2..) else { return Ok(()) };
    let max = usize::try_from(limits.max_icc_profile).unwrap_or(usize::MAX);
    match fdeflate::decompress_to_vec_bounded(stream, max.saturating_add(1)) {
        Ok(profile) if profile.len() <= max => Ok(()),
        Ok(_) | Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) => {
            Err(profile_too_large(limits))
        }
        // A corrupt stream is not a profile the decoder would keep.
        Err(fdeflate::BoundedDecompressionError::DecompressionError { .. }) => Ok(()),
    }
}

/// Refuses an ICC profile of `len` bytes (JPEG and WebP store theirs uncompressed).
pub(crate) fn check_profile_len(len: usize, limits: &Limits) -> Result<(), ImageError> {
    if len as u64 > limits.max_icc_profile { Err(profile_too_large(limits)) } else { Ok(()) }
}

fn profile_too_large(limits: &Limits) -> ImageError {
    ImageError::TooLarge {
        reason: format!("the ICC profile is over the {} byte limit", limits.max_icc_profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // the CRC is the decoder's business
    }

    fn png_with(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        chunk(&mut png, kind, data);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    fn iccp(profile_len: usize) -> Vec<u8> {
        let mut data = b"icc\0\0".to_vec();
        data.extend_from_slice(&fdeflate::compress_to_vec(&vec![0u8; profile_len]));
        data
    }

    #[test]
    fn a_profile_at_the_limit_passes_and_one_byte_more_is_too_large() {
        let limits = Limits { max_icc_profile: 4096, ..Limits::default() };
        assert!(check_png(&png_with(b"iCCP", &iccp(4096)), &limits).is_ok());
        let result = check_png(&png_with(b"iCCP", &iccp(4097)), &limits);
        let Err(ImageError::TooLarge { reason }) = result else { panic!("{result:?}") };
        assert!(reason.contains("ICC profile") && reason.contains("4096"), "{reason}");
    }

    #[test]
    fn text_and_exif_count_together_against_the_metadata_limit() {
        let limits = Limits { max_metadata: 100, ..Limits::default() };
        assert!(check_png(&png_with(b"zTXt", &[b'a'; 100]), &limits).is_ok());
        let mut two = png_with(b"tEXt", &[b'a'; 60]);
        two.truncate(two.len() - 12); // drop IEND
        chunk(&mut two, b"eXIf", &[0; 60]);
        assert!(matches!(check_png(&two, &limits), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn truncated_and_corrupt_chunks_are_left_to_the_decoder() {
        let mut cut = png_with(b"iCCP", &iccp(10));
        cut.truncate(20);
        assert!(check_png(&cut, &Limits::default()).is_ok());
        assert!(check_png(&png_with(b"iCCP", b"no-nul-here"), &Limits::default()).is_ok());
        assert!(check_png(&png_with(b"iCCP", b"icc\0\0not zlib"), &Limits::default()).is_ok());
    }
}
