//! Image formats: input recognised by magic bytes, output chosen by name or `Accept` header.

/// An input format, recognised by its magic bytes only (never by a file name or a claimed type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG (APNG is read as its default image).
    Png,
    /// WebP, lossy or lossless (an animation is read as its first frame).
    WebP,
    /// GIF (an animation is read as its first frame).
    Gif,
}

impl Format {
    /// The format whose signature starts `head`, if it is one of ours.
    pub(crate) fn from_magic(head: &[u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            _ if head.starts_with(PNG) => Some(Self::Png),
            _ if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") => Some(Self::Gif),
            // RIFF, a 4-byte little-endian size, then the form type.
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Self::WebP),
            _ => None,
        }
    }

    /// The media type of this format.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    /// The name stored for this format: its media subtype (`jpeg`, `png`, `webp`, `gif`).
    pub(crate) fn name(self) -> &'static str {
        self.mime().trim_start_matches("image/")
    }

    /// The `image` crate's name for this format.
    pub(crate) fn into_image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::WebP => image::ImageFormat::WebP,
            Self::Gif => image::ImageFormat::Gif,
        }
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// Baseline JPEG: no alpha, readable everywhere.
    Jpeg,
    /// Lossy WebP (libwebp), with alpha.
    WebP,
    /// Lossless PNG.
    Png,
}

impl OutputFormat {
    /// The media type for `Content-Type`.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
            Self::Png => "image/png",
        }
    }

    /// The usual file extension, without the dot.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::WebP => "webp",
            Self::Png => "png",
        }
    }

    /// Parses a format name as written in a URL (`jpeg`, `jpg`, `webp`, `png`; any case).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "webp" => Some(Self::WebP),
            "png" => Some(Self::Png),
            _ => None,
        }
    }

    /// Picks WebP when the `Accept` header lists `image/webp` with a non-zero q, else JPEG.
    ///
    /// Only an explicit `image/webp` counts: `image/*` and `*/*` are sent by clients that cannot
    /// decode WebP too, so JPEG is the safe answer for them.
    pub(crate) fn negotiate(accept: &str) -> Self {
        let accepts_webp = accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or_default().trim();
            media.eq_ignore_ascii_case("image/webp") && quality(parts) > 0.0
        });
        if accepts_webp { Self::WebP } else { Self::Jpeg }
    }
}

/// The `q` weight among an `Accept` item's parameters (RFC 9110 §12.4.2); 1 when absent, 0 when
/// unparseable so that a malformed weight never selects a format.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    for param in params {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            return value.trim().parse().unwrap_or(0.0);
        }
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_bytes_are_png_whatever_they_are_called() {
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(2, 2)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // There is no name to be fooled by: a "photo.jpg" upload holding PNG bytes is a PNG.
        assert_eq!(Format::from_magic(&png), Some(Format::Png));
    }

    #[test]
    fn each_signature_is_recognised() {
        assert_eq!(Format::from_magic(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Some(Format::Jpeg));
        assert_eq!(Format::from_magic(b"GIF89a\x01\x00"), Some(Format::Gif));
        assert_eq!(Format::from_magic(b"GIF87a"), Some(Format::Gif));
        assert_eq!(Format::from_magic(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::Gif.mime(), "image/gif");
    }

    #[test]
    fn text_and_other_riff_files_are_not_images() {
        assert_eq!(Format::from_magic(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(Format::from_magic(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(Format::from_magic(b""), None);
        assert_eq!(Format::from_magic(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn output_names_parse_case_insensitively() {
        assert_eq!(OutputFormat::from_name("JPG"), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::from_name("jpeg"), Some(OutputFormat::Jpeg));
        assert_eq!(OutputFormat::from_name("webp"), Some(OutputFormat::WebP));
        assert_eq!(OutputFormat::from_name("png"), Some(OutputFormat::Png));
        assert_eq!(OutputFormat::from_name("gif"), None);
        assert_eq!(OutputFormat::WebP.mime(), "image/webp");
        assert_eq!(OutputFormat::Jpeg.extension(), "jpg");
    }

    #[test]
    fn chrome_accept_header_gets_webp() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(OutputFormat::negotiate(chrome), OutputFormat::WebP);
        assert_eq!(OutputFormat::negotiate("IMAGE/WEBP;q=0.5"), OutputFormat::WebP);
    }

    #[test]
    fn webp_refused_or_unlisted_gets_jpeg() {
        assert_eq!(OutputFormat::negotiate("image/webp;q=0"), OutputFormat::Jpeg);
        assert_eq!(OutputFormat::negotiate("image/webp; q=0.0, image/*"), OutputFormat::Jpeg);
        assert_eq!(OutputFormat::negotiate("image/*,*/*;q=0.8"), OutputFormat::Jpeg);
        assert_eq!(OutputFormat::negotiate(""), OutputFormat::Jpeg);
        assert_eq!(OutputFormat::negotiate("image/webp;q=abc"), OutputFormat::Jpeg);
    }
}
