//! A bounded, streaming `multipart/form-data` reader (RFC 7578; framing from RFC 2046 §5.1).
//!
//! Hand-written rather than axum's `Multipart` (multer 3): multer keeps the preamble and a part's
//! header section in memory until it finds the boundary or the blank line, rescanning all of it
//! on every read, and its limits only count field data and the whole stream. A body without a
//! boundary therefore cost memory linear and CPU quadratic in its length (issue 12: 200 MiB took
//! +200 MB and 25 s before a 400). Here the preamble and each part's head are capped at
//! [`MAX_HEAD`] bytes and the whole body at the caller's limit; at most one chunk plus a
//! delimiter is buffered, and each byte is scanned at most twice.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use memchr::memmem::{self, Finder};

use crate::ingest::body::BodyError;

/// The most bytes of preamble, or of one part's header section, read before giving up. Browsers
/// send no preamble and a part head of ~150 bytes; 8 KiB leaves room for long file names.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The longest boundary RFC 2046 §5.1.1 allows.
const MAX_BOUNDARY: usize = 70;

/// Header lines allowed in one part (browsers send two or three).
const MAX_PART_HEADERS: usize = 16;

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MultipartError {
    /// The body itself failed: stalled, too slow, too large, cut off.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Not `multipart/form-data` with a usable boundary.
    #[error("{0}")]
    NotMultipart(&'static str),
    /// The body is not a well-formed form; the message says where.
    #[error("{0}")]
    Malformed(String),
    /// One field's data is larger than the caller takes.
    #[error("a form field is larger than its {limit}-byte limit")]
    PartTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

fn malformed(message: &str) -> MultipartError {
    MultipartError::Malformed(message.to_owned())
}

/// The boundary of a `multipart/form-data` content type.
pub(crate) fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart("expected Content-Type: multipart/form-data"));
    }
    // No boundary character (RFC 2046 `bchars`) is a `;`, so splitting on it is safe.
    for param in params.split(';') {
        let Some((key, value)) = param.split_once('=') else { continue };
        if key.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            if value.is_empty() || value.len() > MAX_BOUNDARY {
                return Err(MultipartError::NotMultipart(
                    "the multipart boundary must be 1 to 70 characters",
                ));
            }
            return Ok(value.to_owned());
        }
    }
    Err(MultipartError::NotMultipart("multipart/form-data needs a boundary parameter"))
}

/// One part of a form: what its headers say. Its data is read with [`MultipartReader::chunk`].
#[derive(Debug)]
pub(crate) struct Part {
    name: Option<String>,
}

impl Part {
    /// The field name from `Content-Disposition: form-data; name="…"`, if there is one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: the close (`--`) or a part's headers follow.
    Delimited,
    /// Inside a part's data.
    Data,
    /// After the close delimiter; the epilogue is never read.
    Done,
}

/// Reads a form part by part from a stream of body chunks.
pub(crate) struct MultipartReader<S> {
    body: S,
    /// Bytes received but not handed out yet.
    buf: BytesMut,
    /// `CRLF--boundary`, which starts every delimiter line (RFC 2046 §5.1.1).
    delimiter: Finder<'static>,
    stage: Stage,
    received: u64,
    max_body: u64,
    eof: bool,
}

impl<S> MultipartReader<S>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    /// Reads the form delimited by `boundary` from `body`, refusing a body over `max_body` bytes.
    pub(crate) fn new(boundary: &str, body: S, max_body: u64) -> Self {
        let delimiter = Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned();
        // The first delimiter may open the body with no line break before it; a CRLF put in front
        // lets one search find every delimiter.
        let buf = BytesMut::from(&b"\r\n"[..]);
        Self { body, buf, delimiter, stage: Stage::Preamble, received: 0, max_body, eof: false }
    }

    /// The next part's headers, or `None` after the last part. Data of the current part that
    /// was not read is skipped.
    pub(crate) async fn next_part(&mut self) -> Result<Option<Part>, MultipartError> {
        loop {
            match self.stage {
                Stage::Preamble => self.skip_preamble().await?,
                Stage::Data => while self.chunk().await?.is_some() {},
                Stage::Delimited => return self.read_head().await,
                Stage::Done => return Ok(None),
            }
        }
    }

    /// The next bytes of the current part's data, or `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, MultipartError> {
        if self.stage != Stage::Data {
            return Ok(None);
        }
        let len = self.delimiter.needle().len();
        loop {
            if let Some(at) = self.delimiter.find(&self.buf) {
                let data = self.buf.split_to(at).freeze();
                self.buf.advance(len);
                self.stage = Stage::Delimited;
                return Ok((!data.is_empty()).then_some(data));
            }
            // Everything but a tail that could begin a delimiter is data.
            let safe = self.buf.len().saturating_sub(len - 1);
            if safe > 0 {
                return Ok(Some(self.buf.split_to(safe).freeze()));
            }
            if !self.fill().await? {
                return Err(malformed("the body ended inside a form field (no closing boundary)"));
            }
        }
    }

    /// The current part's data, refused if it is longer than `limit` bytes.
    pub(crate) async fn bytes(&mut self, limit: usize) -> Result<Bytes, MultipartError> {
        let mut data = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if data.len() + chunk.len() > limit {
                return Err(MultipartError::PartTooLarge { limit });
            }
            data.extend_from_slice(&chunk);
        }
        Ok(data.freeze())
    }

    /// The current part's data as a stream, for writing it somewhere as it arrives.
    pub(crate) fn data(&mut self) -> impl Stream<Item = Result<Bytes, MultipartError>> + Unpin + '_ {
        Box::pin(futures_util::stream::unfold(Some(self), |reader| async move {
            let reader = reader?;
            match reader.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
                Ok(None) => None,
                Err(error) => Some((Err(error), None)),
            }
        }))
    }

    /// Reads one more chunk into the buffer; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, MultipartError> {
        if self.eof {
            return Ok(false);
        }
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.received += chunk.len() as u64;
                if self.received > self.max_body {
                    return Err(BodyError::TooLarge { limit: self.max_body }.into());
                }
                self.buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Some(Err(error)) => Err(error.into()),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    async fn skip_preamble(&mut self) -> Result<(), MultipartError> {
        let len = self.delimiter.needle().len();
        let mut skipped = 0;
        loop {
            if let Some(at) = self.delimiter.find(&self.buf) {
                self.buf.advance(at + len);
                self.stage = Stage::Delimited;
                return Ok(());
            }
            let drop = self.buf.len().saturating_sub(len - 1);
            self.buf.advance(drop);
            skipped += drop;
            if skipped > MAX_HEAD {
                return Err(MultipartError::Malformed(format!(
                    "no multipart boundary in the first {} KiB of the body",
                    MAX_HEAD / 1024
                )));
            }
            if !self.fill().await? {
                return Err(malformed("the body ended before the first multipart boundary"));
            }
        }
    }

    /// After a delimiter: `--` ends the form; otherwise optional white space, a line break and
    /// the part's header section, which ends with an empty line.
    async fn read_head(&mut self) -> Result<Option<Part>, MultipartError> {
        loop {
            if self.buf.starts_with(b"--") {
                self.stage = Stage::Done;
                return Ok(None);
            }
            // RFC 2046 allows linear white space between the boundary and its line break.
            let padding = self.buf.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            if self.buf.len() >= padding + 2 {
                if &self.buf[padding..padding + 2] != b"\r\n" {
                    return Err(malformed(
                        "a multipart boundary is followed by something other than a line break",
                    ));
                }
                self.buf.advance(padding);
                break;
            }
            if padding > MAX_HEAD {
                return Err(malformed("a multipart boundary is followed by endless white space"));
            }
            if !self.fill().await? {
                return Err(malformed("the body ended right after a multipart boundary"));
            }
        }
        // The buffer starts with the boundary line's CRLF, so a part without headers is found
        // by the same search as one with them.
        let too_long = || {
            MultipartError::Malformed(format!(
                "a form field's headers are longer than {} KiB or never end with a blank line",
                MAX_HEAD / 1024
            ))
        };
        let mut from = 0;
        let end = loop {
            if let Some(at) = memmem::find(&self.buf[from..], b"\r\n\r\n") {
                break from + at;
            }
            if self.buf.len() > MAX_HEAD + 2 {
                return Err(too_long());
            }
            from = self.buf.len().saturating_sub(3);
            if !self.fill().await? {
                return Err(malformed("the body ended inside a form field's headers"));
            }
        };
        if end > MAX_HEAD {
            return Err(too_long());
        }
        let head = self.buf.split_to(end + 4);
        let part = parse_head(&head[2..])?;
        self.stage = Stage::Data;
        Ok(Some(part))
    }
}

/// Parses a part's header section (ending with its empty line).
fn parse_head(head: &[u8]) -> Result<Part, MultipartError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let headers = match httparse::parse_headers(head, &mut headers) {
        Ok(httparse::Status::Complete((_, headers))) => headers,
        Ok(httparse::Status::Partial) => return Err(malformed("a form field's headers are incomplete")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(MultipartError::Malformed(format!(
                "a form field has more than {MAX_PART_HEADERS} headers"
            )));
        }
        Err(error) => {
            return Err(MultipartError::Malformed(format!("a form field's headers are malformed: {error}")));
        }
    };
    let name = match headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-disposition")) {
        // RFC 7578 §5.1: names may be UTF-8.
        Some(header) => field_name(&String::from_utf8_lossy(header.value))?,
        None => None,
    };
    Ok(Part { name })
}

/// The `name` parameter of a `form-data` Content-Disposition (RFC 7578 §4.2). Quoted values end
/// at the next quote: browsers percent-encode quotes in names and escape nothing else.
fn field_name(disposition: &str) -> Result<Option<String>, MultipartError> {
    let (kind, mut rest) = disposition.split_once(';').unwrap_or((disposition, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(malformed("a form field's Content-Disposition is not form-data"));
    }
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Ok(None);
        }
        let (key, after) =
            rest.split_once('=').ok_or_else(|| malformed("a Content-Disposition parameter has no value"))?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| malformed("a quoted Content-Disposition parameter is not closed"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim_end(), &after[end..])
            }
        };
        if key.trim().eq_ignore_ascii_case("name") {
            return Ok(Some(value.to_owned()));
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    /// A preamble, padding after a boundary, a `;` inside a quoted parameter, and data holding
    /// near-misses of the delimiter.
    const FORM: &[u8] = b"preamble to ignore\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nA title\r\n--XyZ  \r\nContent-Disposition: form-data; filename=\"a;b.mp4\"; name=\"file\"\r\nContent-Type: video/mp4\r\n\r\n\r\n-XyZ --XyZ\r\r\n--Xy\r\n--XyZ--\r\nepilogue";

    fn chunked(body: &[u8], size: usize) -> impl Stream<Item = Result<Bytes, BodyError>> + Unpin + use<> {
        let chunks: Vec<_> = body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(chunks)
    }

    async fn read_all<S>(
        mut reader: MultipartReader<S>,
    ) -> Result<Vec<(Option<String>, Vec<u8>)>, MultipartError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await? {
            let data = reader.bytes(1 << 20).await?;
            parts.push((part.name().map(str::to_owned), data.to_vec()));
        }
        Ok(parts)
    }

    #[tokio::test]
    async fn a_form_reads_the_same_however_it_is_chunked() {
        let expected = [
            (Some("title".to_owned()), b"A title".to_vec()),
            (Some("file".to_owned()), b"\r\n-XyZ --XyZ\r\r\n--Xy".to_vec()),
        ];
        for size in 1..=FORM.len() {
            let reader = MultipartReader::new("XyZ", chunked(FORM, size), 1 << 20);
            assert_eq!(read_all(reader).await.unwrap(), expected, "chunks of {size}");
        }
    }

    #[tokio::test]
    async fn a_form_without_preamble_or_part_headers_reads() {
        let form = b"--b\r\n\r\nno headers\r\n--b--";
        let parts = read_all(MultipartReader::new("b", chunked(form, 3), 1024)).await.unwrap();
        assert_eq!(parts, [(None, b"no headers".to_vec())]);
    }

    #[tokio::test]
    async fn unread_data_is_skipped() {
        let form = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nskip me\r\n--b\r\nContent-Disposition: form-data; name=b\r\n\r\nkeep\r\n--b--\r\n";
        let mut reader = MultipartReader::new("b", chunked(form, 5), 1024);
        assert_eq!(reader.next_part().await.unwrap().unwrap().name(), Some("a"));
        assert_eq!(reader.next_part().await.unwrap().unwrap().name(), Some("b"));
        assert_eq!(&reader.bytes(100).await.unwrap()[..], b"keep");
        assert!(reader.next_part().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_body_without_a_boundary_is_refused_after_a_few_kib() {
        let endless = stream::repeat_with(|| Ok(Bytes::from_static(&[b'x'; 1000])));
        let mut reader = MultipartReader::new("b", endless, u64::MAX);
        let error = reader.next_part().await.unwrap_err();
        assert!(error.to_string().starts_with("no multipart boundary in the first 8 KiB"), "{error}");
        assert!(reader.received <= (MAX_HEAD + 2000) as u64, "{}", reader.received);
    }

    #[tokio::test]
    async fn endless_part_headers_are_refused_after_a_few_kib() {
        let head = stream::iter([Ok(Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\""))]);
        let endless = head.chain(stream::repeat_with(|| Ok(Bytes::from_static(&[b'n'; 1000]))));
        let mut reader = MultipartReader::new("b", endless, u64::MAX);
        let error = reader.next_part().await.unwrap_err();
        assert!(error.to_string().contains("headers are longer than 8 KiB"), "{error}");
        assert!(reader.received <= (MAX_HEAD + 2000) as u64, "{}", reader.received);
    }

    #[tokio::test]
    async fn the_whole_body_and_each_field_are_capped() {
        let form = b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n0123456789\r\n--b--";
        let mut reader = MultipartReader::new("b", chunked(form, 4), 1024);
        reader.next_part().await.unwrap();
        assert!(matches!(reader.bytes(9).await, Err(MultipartError::PartTooLarge { limit: 9 })));
        let error = read_all(MultipartReader::new("b", chunked(form, 4), 40)).await.unwrap_err();
        assert!(matches!(error, MultipartError::Body(BodyError::TooLarge { limit: 40 })), "{error}");
    }

    #[tokio::test]
    async fn broken_framing_is_malformed() {
        for form in [
            &b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\nno end"[..],
            b"--bX\r\n\r\nboundary followed by junk",
            b"--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--",
            b"--b\r\nContent-Disposition: form-data; name=\"open\r\n\r\nx\r\n--b--",
            b"--b\r\nNo colon here\r\n\r\nx\r\n--b--",
            b"",
        ] {
            let error = read_all(MultipartReader::new("b", chunked(form, 7), 1024)).await.unwrap_err();
            assert!(
                matches!(error, MultipartError::Malformed(_)),
                "{:?}: {error}",
                String::from_utf8_lossy(form)
            );
        }
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").unwrap(), "abc");
        assert_eq!(boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b=c\"").unwrap(), "a b=c");
        for bad in ["text/plain; boundary=abc", "multipart/form-data", "multipart/form-data; boundary=\"\""] {
            assert!(matches!(boundary(bad), Err(MultipartError::NotMultipart(_))), "{bad}");
        }
        assert!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))).is_err());
    }
}
