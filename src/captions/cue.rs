//! Caption text: decoding (UTF-8 with or without BOM, Windows-1252 fallback), parsing SubRip
//! and WebVTT into cues, and writing WebVTT; pure functions, no I/O.

use std::fmt::Write as _;

/// The two caption formats kino reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// WebVTT (`.vtt`), what `<track>` plays.
    Vtt,
    /// SubRip (`.srt`), converted to WebVTT when served.
    Srt,
}

impl Format {
    /// The format of a file by its extension (`vtt`, `srt`, any case).
    pub(crate) fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "vtt" => Some(Self::Vtt),
            "srt" => Some(Self::Srt),
            _ => None,
        }
    }

    /// The format of uploaded text: WebVTT starts with its signature, anything else is SubRip.
    pub(crate) fn detect(text: &str) -> Self {
        if text.starts_with("WEBVTT") { Self::Vtt } else { Self::Srt }
    }

    /// The name stored in the catalog and used as the file extension.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Vtt => "vtt",
            Self::Srt => "srt",
        }
    }
}

/// One cue: its optional id, its times in milliseconds, WebVTT cue settings and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cue {
    /// The cue's identifier line (SubRip's cue number), if it has one.
    pub(crate) id: Option<String>,
    /// When it shows, in milliseconds from the start.
    pub(crate) start_ms: u64,
    /// When it goes, in milliseconds from the start.
    pub(crate) end_ms: u64,
    /// WebVTT settings after the end time (`line:0 align:start`); SubRip has none.
    pub(crate) settings: String,
    /// The text, one entry per line (markup such as `<i>` kept: WebVTT has the same tags).
    pub(crate) lines: Vec<String>,
}

/// A block that is not a cue, by the line (1-based) it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The 1-based line of the decoded text where the bad block (or its timing line) is.
    pub(crate) line: usize,
    /// What is wrong there.
    pub(crate) message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a file holds: the cues that parse and the blocks that do not (served without them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Parsed {
    /// The cues, in file order.
    pub(crate) cues: Vec<Cue>,
    /// The blocks left out, in file order.
    pub(crate) problems: Vec<Problem>,
}

/// The text of caption bytes: UTF-8 without its BOM, else Windows-1252 (a superset of Latin-1
/// for printable text), which is what most non-UTF-8 SubRip files in the wild are; line ends
/// normalised to `\n` (CRLF and lone CR both occur).
pub(crate) fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| windows_1252(b)).collect(),
    };
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The character of one Windows-1252 byte; the five bytes it leaves undefined map as Latin-1 does.
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
        '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// Parses decoded text in `format`.
pub(crate) fn parse(text: &str, format: Format) -> Parsed {
    let mut parsed = Parsed::default();
    let mut blocks = blocks(text);
    if format == Format::Vtt {
        match blocks.next() {
            Some((_, header)) if is_signature(header[0]) => {}
            _ => {
                parsed.problems.push(Problem { line: 1, message: "a WebVTT file starts with WEBVTT".into() })
            }
        }
    }
    for (line, block) in blocks {
        if format == Format::Vtt
            && ["NOTE", "STYLE", "REGION"].iter().any(|kw| starts_with_word(block[0], kw))
        {
            continue;
        }
        match cue(line, &block, format) {
            Ok(cue) => parsed.cues.push(cue),
            Err(problem) => parsed.problems.push(problem),
        }
    }
    if parsed.cues.is_empty() && parsed.problems.is_empty() {
        parsed.problems.push(Problem { line: 1, message: "there are no cues".into() });
    }
    parsed
}

/// `WEBVTT` alone or followed by a space or tab and a description.
fn is_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn starts_with_word(line: &str, word: &str) -> bool {
    line.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Blocks of non-empty lines separated by blank ones, with the line number each starts on.
fn blocks(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    let mut lines = text.lines().enumerate().peekable();
    std::iter::from_fn(move || {
        while lines.next_if(|(_, l)| l.trim().is_empty()).is_some() {}
        let (first, _) = *lines.peek()?;
        let mut block = Vec::new();
        while let Some((_, line)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            block.push(line);
        }
        Some((first + 1, block))
    })
}

/// One cue block starting at `line`: an optional id (SubRip's cue number), the timing line, text.
fn cue(line: usize, block: &[&str], format: Format) -> Result<Cue, Problem> {
    let has_id = !block[0].contains("-->");
    let (id, timing_at) = if has_id { (Some(block[0].trim().to_owned()), 1) } else { (None, 0) };
    let problem = |offset: usize, message: String| Problem { line: line + offset, message };
    let Some(timing) = block.get(timing_at) else {
        return Err(problem(0, "expected a timing line such as 00:00:01,000 --> 00:00:02,000".into()));
    };
    let (start, rest) = timing
        .split_once("-->")
        .ok_or_else(|| problem(timing_at, format!("expected start --> end, found {:?}", excerpt(timing))))?;
    let rest = rest.trim_start();
    let (end, settings) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let time = |text: &str| {
        timestamp(text.trim(), format)
            .ok_or_else(|| problem(timing_at, format!("{:?} is not a timestamp", excerpt(text.trim()))))
    };
    let (start_ms, end_ms) = (time(start)?, time(end)?);
    if end_ms < start_ms {
        return Err(problem(timing_at, "the cue ends before it starts".into()));
    }
    let settings = match format {
        Format::Vtt => settings.trim().to_owned(),
        // SubRip's optional `X1:… Y1:…` box has no WebVTT equivalent: dropped.
        Format::Srt => String::new(),
    };
    let lines = block[timing_at + 1..].iter().map(|l| (*l).to_owned()).collect();
    Ok(Cue { id, start_ms, end_ms, settings, lines })
}

/// A timestamp: `hh:mm:ss,ttt` in SubRip (also with `.`, which some writers use), WebVTT's
/// `[hh:]mm:ss.ttt`; minutes and seconds below 60, exactly three fraction digits.
fn timestamp(text: &str, format: Format) -> Option<u64> {
    let separators: &[char] = match format {
        Format::Srt => &[',', '.'],
        Format::Vtt => &['.'],
    };
    let (clock, millis) = text.split_once(separators)?;
    let fields: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match (format, fields.as_slice()) {
        (_, [h, m, s]) => (*h, *m, *s),
        (Format::Vtt, [m, s]) => ("0", *m, *s),
        _ => return None,
    };
    let digits = |s: &str, len: Option<usize>| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && len.is_none_or(|n| s.len() == n))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let hours = digits(hours, None)?;
    let (minutes, seconds, millis) =
        (digits(minutes, Some(2))?, digits(seconds, Some(2))?, digits(millis, Some(3))?);
    (minutes < 60 && seconds < 60).then(|| ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

/// The first characters of a line, for a message.
fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

/// A WebVTT timestamp, `hh:mm:ss.ttt`.
fn vtt_time(ms: u64) -> String {
    let (h, m, s, t) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}.{t:03}")
}

/// The cues as a WebVTT file. A text line of `-->` would end the cue in WebVTT, and a blank one
/// cannot occur (it ends the block), so only the arrow is escaped.
pub(crate) fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        out.push('\n');
        if let Some(id) = &cue.id {
            let _ = writeln!(out, "{}", id.replace("-->", "--&gt;"));
        }
        let _ = write!(out, "{} --> {}", vtt_time(cue.start_ms), vtt_time(cue.end_ms));
        if !cue.settings.is_empty() {
            let _ = write!(out, " {}", cue.settings);
        }
        out.push('\n');
        for line in &cue.lines {
            let _ = writeln!(out, "{}", line.replace("-->", "--&gt;"));
        }
    }
    out
}

/// Caption bytes as the WebVTT a `<track>` plays, and what could not be parsed. A WebVTT file is
/// served as written (decoded, line ends normalised) so its STYLE, REGION and NOTE blocks stay;
/// browsers skip a bad cue themselves. SubRip is rewritten from its cues.
pub(crate) fn webvtt(bytes: &[u8], format: Format) -> (String, Vec<Problem>) {
    let text = decode(bytes);
    let parsed = parse(&text, format);
    match format {
        Format::Vtt => (text, parsed.problems),
        Format::Srt => (to_webvtt(&parsed.cues), parsed.problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRT: &str =
        "1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:03,000 --> 00:01:04,020\n<i>two</i>\nlines\n";
    const VTT: &str = "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello\n\n2\n00:00:03.000 --> 00:01:04.020\n<i>two</i>\nlines\n";

    #[test]
    fn srt_becomes_webvtt_with_periods_and_the_numbers_as_ids() {
        assert_eq!(webvtt(SRT.as_bytes(), Format::Srt), (VTT.to_owned(), vec![]));
    }

    #[test]
    fn a_bom_and_crlf_line_ends_are_handled() {
        let windows = format!("\u{FEFF}{}", SRT.replace('\n', "\r\n"));
        assert_eq!(webvtt(windows.as_bytes(), Format::Srt), (VTT.to_owned(), vec![]));
        let vtt = format!("\u{FEFF}{}", VTT.replace('\n', "\r\n"));
        assert_eq!(webvtt(vtt.as_bytes(), Format::Vtt), (VTT.to_owned(), vec![]));
    }

    #[test]
    fn windows_1252_is_the_fallback_when_the_bytes_are_not_utf8() {
        let latin = b"1\n00:00:01,000 --> 00:00:02,000\nCaf\xE9 \x93ol\xE9\x94 \x80\n";
        let (vtt, problems) = webvtt(latin, Format::Srt);
        assert_eq!(vtt, "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nCafé “olé” €\n");
        assert!(problems.is_empty());
    }

    #[test]
    fn a_malformed_cue_is_reported_by_line_and_the_rest_is_served() {
        let text = "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n00:00:03 --> 00:00:04,000\nbad\n\n3\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n4\n00:00:06,000 --> 00:00:07,000\nfine too\n";
        let (vtt, problems) = webvtt(text.as_bytes(), Format::Srt);
        assert_eq!(
            vtt,
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nfine\n\n4\n00:00:06.000 --> 00:00:07.000\nfine too\n"
        );
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            ["line 6: \"00:00:03\" is not a timestamp", "line 10: the cue ends before it starts"]
        );
    }

    #[test]
    fn srt_without_numbers_with_box_coordinates_and_long_hours_converts() {
        let text = "00:00:01,000 --> 00:00:02,000 X1:10 X2:20 Y1:5 Y2:9\nno number\n\n100:00:00,000 --> 100:00:00,001\nlate\n";
        let (vtt, problems) = webvtt(text.as_bytes(), Format::Srt);
        assert_eq!(
            vtt,
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nno number\n\n100:00:00.000 --> 100:00:00.001\nlate\n"
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn webvtt_needs_its_signature_and_keeps_settings_and_skips_notes() {
        let parsed = parse(
            "WEBVTT - a title\n\nNOTE hi\n\n00:01.000 --> 00:02.000 align:start\nshort clock\n",
            Format::Vtt,
        );
        assert_eq!(parsed.problems, vec![]);
        assert_eq!(parsed.cues[0].start_ms, 1000);
        assert_eq!(parsed.cues[0].settings, "align:start");
        let unsigned = parse("00:01.000 --> 00:02.000\nx\n", Format::Vtt);
        assert_eq!(unsigned.problems[0].to_string(), "line 1: a WebVTT file starts with WEBVTT");
        // A comma is SubRip's, not WebVTT's.
        let comma = parse("WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nx\n", Format::Vtt);
        assert_eq!(comma.problems[0].line, 3);
    }

    #[test]
    fn empty_files_and_text_without_timing_are_problems() {
        assert_eq!(parse("", Format::Srt).problems[0].message, "there are no cues");
        assert_eq!(
            parse("just words\n", Format::Srt).problems[0].to_string(),
            "line 1: expected a timing line such as 00:00:01,000 --> 00:00:02,000"
        );
        let arrow = to_webvtt(&[Cue {
            id: None,
            start_ms: 0,
            end_ms: 1,
            settings: String::new(),
            lines: vec!["a --> b".into()],
        }]);
        assert!(arrow.ends_with("a --&gt; b\n"), "{arrow}");
    }
}
