//! Content sniffing: a file's MIME type from its first bytes, never from its name.

/// How many leading bytes callers pass to [`sniff`].
///
/// 64 covers every signature below; ffmpeg and mkvmerge write the EBML DocType within the first
/// 40 bytes.
pub(crate) const SNIFF_LEN: usize = 64;

/// The MIME type that `head`, a file's first bytes, announces; `None` when no signature matches.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.get(4..8) == Some(b"ftyp") {
        return Some(match head.get(8..12)? {
            b"qt  " => "video/quicktime",
            b"M4A " | b"M4B " | b"M4P " => "audio/mp4",
            _ => "video/mp4",
        });
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // DocType defaults to "matroska" when the header leaves it out (RFC 8794 §11.2.6).
        return match ebml_doc_type(head).unwrap_or(b"matroska") {
            b"webm" => Some("video/webm"),
            b"matroska" => Some("video/x-matroska"),
            _ => None,
        };
    }
    let signatures: [(&[u8], &str); 6] = [
        (&[0xFF, 0xD8, 0xFF], "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"ID3", "audio/mpeg"),
        (b"OggS", "audio/ogg"),
    ];
    if let Some((_, mime)) = signatures.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(mime);
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return Some("image/webp");
    }
    mpeg_audio(head)
}

/// The canonical file extension for a MIME type [`sniff`] returns.
pub(crate) fn extension(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "audio/mp4" => "m4a",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/ogg" => "ogg",
        _ => return None,
    })
}

/// Recognises an MPEG audio frame header (MP3 without ID3 tag) or an ADTS (raw AAC) header.
fn mpeg_audio(head: &[u8]) -> Option<&'static str> {
    let [0xFF, second, third, ..] = *head else {
        return None;
    };
    // 11 sync bits, then version and layer; reject the reserved values so that random data
    // starting with 0xFF rarely passes.
    let version = (second >> 3) & 0b11;
    let layer = (second >> 1) & 0b11;
    let bitrate = third >> 4;
    let sample_rate = (third >> 2) & 0b11;
    if second & 0xE0 != 0xE0 || version == 0b01 {
        return None;
    }
    if layer == 0 {
        // ADTS keeps the MPEG-2/4 version bit and layer 0.
        return (second & 0xF6 == 0xF0).then_some("audio/aac");
    }
    (bitrate != 0xF && sample_rate != 0b11).then_some("audio/mpeg")
}

/// Finds the DocType in an EBML header cut off anywhere, `None` when it is not within `head`.
fn ebml_doc_type(head: &[u8]) -> Option<&[u8]> {
    let mut rest = head.get(4..)?;
    let header_len = vint(&mut rest)?;
    let header_len = usize::try_from(header_len).unwrap_or(usize::MAX);
    let mut body = rest.get(..header_len.min(rest.len()))?;
    while !body.is_empty() {
        // An id keeps its marker bits, so read it as raw bytes.
        let id_len = body[0].leading_zeros() as usize + 1;
        let id = body.get(..id_len).filter(|_| id_len <= 4)?;
        body = &body[id_len..];
        let len = usize::try_from(vint(&mut body)?).ok()?;
        let data = body.get(..len)?;
        if id == [0x42, 0x82] {
            return Some(data);
        }
        body = &body[len..];
    }
    None
}

/// Reads an EBML variable-length integer, marker removed; unknown sizes read as all ones.
fn vint(bytes: &mut &[u8]) -> Option<u64> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    let field = bytes.get(..len).filter(|_| len <= 8)?;
    let marker_free = u64::from(first & 0xFF_u8.checked_shr(len as u32).unwrap_or(0));
    let value = field[1..].iter().fold(marker_free, |n, &b| n << 8 | u64::from(b));
    *bytes = &bytes[len..];
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(name: &str) -> Vec<u8> {
        let path = format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut bytes = std::fs::read(path).unwrap();
        bytes.truncate(SNIFF_LEN);
        bytes
    }

    #[test]
    fn samples_sniff_as_their_types() {
        assert_eq!(sniff(&head_of("sample-h264.mp4")), Some("video/mp4"));
        assert_eq!(sniff(&head_of("sample-moov-at-end.mp4")), Some("video/mp4"));
        assert_eq!(sniff(&head_of("sample-vp9.webm")), Some("video/webm"));
        assert_eq!(sniff(&head_of("sample-photo.jpg")), Some("image/jpeg"));
        assert_eq!(sniff(&head_of("sample-graphic.png")), Some("image/png"));
    }

    #[test]
    fn ffmpeg_matroska_header_sniffs_as_matroska() {
        // The first bytes of `ffmpeg -i sample-vp9.webm -c copy out.mkv` (Lavf59): the EBML
        // header is 35 bytes, DocType at offset 23.
        let head = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\
\x81\x08\x42\x82\x88matroska\x42\x87\x81\x04\x42\x85\x81\x02\x18\x53\x80\x67\x01\x00\x00\x00";
        assert_eq!(sniff(head), Some("video/x-matroska"));
    }

    #[test]
    fn ebml_header_with_an_eight_byte_size_still_finds_the_doc_type() {
        let mut head = vec![0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 0, 0, 0, 0, 0, 0x07];
        head.extend_from_slice(b"\x42\x82\x84webm");
        assert_eq!(sniff(&head), Some("video/webm"));
        let doc_type = head.len() - 4;
        head[doc_type..].copy_from_slice(b"avi!");
        assert_eq!(sniff(&head), None);
    }

    #[test]
    fn ftyp_brands_pick_quicktime_and_audio() {
        let with_brand = |brand: &[u8; 4]| {
            let mut head = b"\0\0\0\x18ftyp".to_vec();
            head.extend_from_slice(brand);
            head
        };
        assert_eq!(sniff(&with_brand(b"isom")), Some("video/mp4"));
        assert_eq!(sniff(&with_brand(b"qt  ")), Some("video/quicktime"));
        assert_eq!(sniff(&with_brand(b"M4A ")), Some("audio/mp4"));
    }

    #[test]
    fn image_and_audio_signatures_are_recognised() {
        assert_eq!(sniff(b"GIF89a\x01\x00"), Some("image/gif"));
        assert_eq!(sniff(b"GIF87a\x01\x00"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00WAVEfmt "), None);
        assert_eq!(sniff(b"ID3\x04\x00"), Some("audio/mpeg"));
        // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz.
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some("audio/mpeg"));
        // ADTS AAC, MPEG-4, no CRC.
        assert_eq!(sniff(&[0xFF, 0xF1, 0x50, 0x80]), Some("audio/aac"));
        assert_eq!(sniff(b"OggS\x00\x02"), Some("audio/ogg"));
    }

    #[test]
    fn unknown_or_short_input_sniffs_as_nothing() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"hello world, not media"), None);
        assert_eq!(sniff(&[0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(sniff(b"\0\0\0\x18ftyp"), None);
    }

    #[test]
    fn every_sniffed_type_has_an_extension() {
        let types = [
            ("video/mp4", "mp4"),
            ("video/quicktime", "mov"),
            ("audio/mp4", "m4a"),
            ("video/webm", "webm"),
            ("video/x-matroska", "mkv"),
            ("image/jpeg", "jpg"),
            ("image/png", "png"),
            ("image/gif", "gif"),
            ("image/webp", "webp"),
            ("audio/mpeg", "mp3"),
            ("audio/aac", "aac"),
            ("audio/ogg", "ogg"),
        ];
        for (mime, ext) in types {
            assert_eq!(extension(mime), Some(ext), "{mime}");
        }
        assert_eq!(extension("text/html"), None);
    }
}
