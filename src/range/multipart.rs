//! `multipart/byteranges` framing (RFC 9110 §14.6) with an exact length known up front.

use bytes::Bytes;

use super::body::Segment;
use super::parse::ByteRange;

/// The parts of a multipart response and its `Content-Type`, ready to stream.
pub(crate) struct Multipart {
    /// `multipart/byteranges; boundary=…`.
    pub(crate) content_type: String,
    /// Part headers as bytes, file ranges as file segments, then the closing delimiter.
    pub(crate) segments: Vec<Segment>,
    /// The exact body length, for `Content-Length`.
    pub(crate) len: u64,
}

/// Frames `ranges` of a representation of `total` bytes and type `mime`.
pub(crate) fn frame(ranges: &[ByteRange], total: u64, mime: &str) -> Multipart {
    let boundary = boundary();
    let mut segments = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut len = 0;
    for range in ranges {
        // Each delimiter starts with CRLF; before the first part it is a harmless preamble line,
        // which is what nginx sends too.
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {mime}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(total)
        );
        len += head.len() as u64 + range.len();
        segments.push(Segment::Bytes(Bytes::from(head)));
        segments.push(Segment::File { offset: range.start(), len: range.len() });
    }
    let close = format!("\r\n--{boundary}--\r\n");
    len += close.len() as u64;
    segments.push(Segment::Bytes(Bytes::from(close)));
    Multipart { content_type: format!("multipart/byteranges; boundary={boundary}"), segments, len }
}

/// A random boundary: it must not occur in the parts, and 80 random bits make that certain enough.
fn boundary() -> String {
    let bytes: [u8; 10] = crate::id::random_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_exact_and_parts_carry_their_ranges() {
        let ranges = [ByteRange::new(0, 1).unwrap(), ByteRange::new(10, 14).unwrap()];
        let multipart = frame(&ranges, 100, "video/mp4");
        let boundary = multipart.content_type.strip_prefix("multipart/byteranges; boundary=").unwrap();
        assert_eq!(boundary.len(), 20);
        let mut rendered = Vec::new();
        for segment in &multipart.segments {
            match segment {
                Segment::Bytes(b) => rendered.extend_from_slice(b),
                Segment::File { len, .. } => rendered.extend(std::iter::repeat_n(b'x', *len as usize)),
            }
        }
        assert_eq!(rendered.len() as u64, multipart.len);
        let text = String::from_utf8(rendered).unwrap();
        assert!(text.contains("Content-Range: bytes 0-1/100\r\n\r\nxx\r\n"), "{text}");
        assert!(text.contains("Content-Range: bytes 10-14/100\r\n\r\nxxxxx\r\n"), "{text}");
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    }
}
