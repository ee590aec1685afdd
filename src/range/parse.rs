//! `Range: bytes=…` parsing and the decision it leads to (RFC 9110 §14.1–14.2).

use std::fmt;

/// At most this many ranges are honoured (as nginx's `max_ranges`); more get the whole file.
pub(crate) const MAX_RANGES: usize = 16;

/// An inclusive, non-empty byte range inside a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    start: u64,
    end: u64,
}

impl ByteRange {
    /// A range from `start` to `end` inclusive; `None` unless `start <= end`.
    pub(crate) fn new(start: u64, end: u64) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// The first byte.
    pub(crate) fn start(self) -> u64 {
        self.start
    }

    /// The number of bytes.
    pub(crate) fn len(self) -> u64 {
        self.end - self.start + 1
    }

    /// `bytes start-end/total`, the `Content-Range` value of this range.
    pub(crate) fn content_range(self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// What a `Range` header asks of a representation of a given length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeDecision {
    /// Send the whole representation with 200: no header, a unit or syntax we ignore, too many
    /// ranges, or ranges adding up to more than the file (the nginx rule against amplification).
    Full,
    /// Send these ranges with 206: sorted, with overlapping and adjacent ones coalesced.
    Partial(Vec<ByteRange>),
    /// Nothing requested exists: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// One `first-last`, `first-` or `-suffix` spec before it is resolved against a length.
#[derive(Debug, Clone, Copy)]
enum Spec {
    From { first: u64, last: Option<u64> },
    Suffix(u64),
}

/// Decides what to send for `header` (the raw `Range` value) and a representation of `len` bytes.
pub(crate) fn decide(header: Option<&str>, len: u64) -> RangeDecision {
    let Some(header) = header else { return RangeDecision::Full };
    // RFC 9110 §14.2: a server MUST ignore a range unit it does not understand, and MAY ignore
    // a malformed Range; ignoring serves the player the whole file, which always plays.
    let Some(specs) = parse_specs(header) else { return RangeDecision::Full };
    if specs.len() > MAX_RANGES {
        return RangeDecision::Full;
    }
    let mut ranges: Vec<ByteRange> = specs.iter().filter_map(|spec| resolve(*spec, len)).collect();
    if ranges.is_empty() {
        return RangeDecision::Unsatisfiable;
    }
    let requested: u64 = ranges.iter().map(|r| r.len()).fold(0, u64::saturating_add);
    if ranges.len() > 1 && requested > len {
        return RangeDecision::Full;
    }
    ranges.sort_by_key(|r| r.start);
    RangeDecision::Partial(coalesce(ranges))
}

/// Parses `bytes=spec, spec…`; `None` for another unit or any malformed spec.
fn parse_specs(header: &str) -> Option<Vec<Spec>> {
    let (unit, set) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // Empty list elements are allowed and skipped (RFC 9110 §5.6.1).
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Bounded before anything is allocated for it: a header of a million commas is cheap.
        if specs.len() > MAX_RANGES {
            return Some(specs);
        }
        let (first, last) = spec.split_once('-')?;
        let (first, last) = (first.trim(), last.trim());
        specs.push(if first.is_empty() {
            Spec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() { None } else { Some(digits(last)?) };
            if last.is_some_and(|last| last < first) {
                return None;
            }
            Spec::From { first, last }
        });
    }
    (!specs.is_empty()).then_some(specs)
}

/// A run of ASCII digits as a number; no signs, no spaces, no overflow.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Resolves a spec against the length; `None` when it is unsatisfiable.
fn resolve(spec: Spec, len: u64) -> Option<ByteRange> {
    match spec {
        Spec::From { first, .. } if first >= len => None,
        Spec::From { first, last } => ByteRange::new(first, last.unwrap_or(u64::MAX).min(len - 1)),
        Spec::Suffix(0) => None,
        Spec::Suffix(_) if len == 0 => None,
        Spec::Suffix(n) => ByteRange::new(len.saturating_sub(n), len - 1),
    }
}

/// Merges sorted ranges that overlap or touch (RFC 9110 §14.3 allows it; it saves part headers).
fn coalesce(sorted: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(1) => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(ranges: &[(u64, u64)]) -> RangeDecision {
        RangeDecision::Partial(ranges.iter().map(|&(s, e)| ByteRange::new(s, e).unwrap()).collect())
    }

    #[test]
    fn the_three_single_forms() {
        assert_eq!(decide(Some("bytes=0-499"), 1000), partial(&[(0, 499)]));
        assert_eq!(decide(Some("bytes=500-"), 1000), partial(&[(500, 999)]));
        assert_eq!(decide(Some("bytes=-200"), 1000), partial(&[(800, 999)]));
    }

    #[test]
    fn safari_probe_and_chrome_open_range_are_partial() {
        assert_eq!(decide(Some("bytes=0-1"), 1000), partial(&[(0, 1)]));
        assert_eq!(decide(Some("bytes=0-"), 1000), partial(&[(0, 999)]));
    }

    #[test]
    fn ends_past_the_file_are_clamped_and_suffixes_longer_than_it_take_all() {
        assert_eq!(decide(Some("bytes=900-5000"), 1000), partial(&[(900, 999)]));
        assert_eq!(decide(Some("bytes=-5000"), 1000), partial(&[(0, 999)]));
    }

    #[test]
    fn unsatisfiable_when_nothing_requested_exists() {
        assert_eq!(decide(Some("bytes=1000-"), 1000), RangeDecision::Unsatisfiable);
        assert_eq!(decide(Some("bytes=-0"), 1000), RangeDecision::Unsatisfiable);
        assert_eq!(decide(Some("bytes=0-0"), 0), RangeDecision::Unsatisfiable);
        assert_eq!(decide(Some("bytes=2000-3000, 5000-"), 1000), RangeDecision::Unsatisfiable);
    }

    #[test]
    fn unsatisfiable_specs_are_dropped_when_others_remain() {
        assert_eq!(decide(Some("bytes=2000-3000, 0-9"), 1000), partial(&[(0, 9)]));
    }

    #[test]
    fn several_ranges_are_sorted_and_coalesced() {
        assert_eq!(decide(Some("bytes=500-599, 0-99"), 1000), partial(&[(0, 99), (500, 599)]));
        assert_eq!(decide(Some("bytes=0-99, 50-149"), 1000), partial(&[(0, 149)]));
        assert_eq!(decide(Some("bytes=0-99, 100-199"), 1000), partial(&[(0, 199)]));
        assert_eq!(decide(Some("bytes=0-9,,20-29"), 1000), partial(&[(0, 9), (20, 29)]));
    }

    #[test]
    fn too_many_or_too_much_gets_the_whole_file() {
        let seventeen = (0..17).map(|i| format!("{}-{}", i * 10, i * 10 + 1)).collect::<Vec<_>>().join(",");
        assert_eq!(decide(Some(&format!("bytes={seventeen}")), 1000), RangeDecision::Full);
        let sixteen = (0..16).map(|i| format!("{}-{}", i * 10, i * 10 + 1)).collect::<Vec<_>>().join(",");
        assert!(
            matches!(decide(Some(&format!("bytes={sixteen}")), 1000), RangeDecision::Partial(r) if r.len() == 16)
        );
        assert_eq!(decide(Some("bytes=0-999, 0-999"), 1000), RangeDecision::Full);
        let flood = format!("bytes={}", ",".repeat(100_000) + "0-1");
        assert_eq!(decide(Some(&flood), 1000), partial(&[(0, 1)]));
    }

    #[test]
    fn other_units_and_malformed_headers_are_ignored() {
        for header in [
            "items=0-1",
            "bytes=",
            "bytes=abc",
            "bytes=5-1",
            "bytes=1-2-3",
            "bytes=-",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes 0-1",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(decide(Some(header), 1000), RangeDecision::Full, "{header}");
        }
        assert_eq!(decide(None, 1000), RangeDecision::Full);
    }

    #[test]
    fn unit_and_whitespace_are_lenient() {
        assert_eq!(decide(Some("Bytes = 0 - 1 , 4-5"), 1000), partial(&[(0, 1), (4, 5)]));
    }

    #[test]
    fn content_range_formats() {
        assert_eq!(ByteRange::new(0, 1).unwrap().content_range(10), "bytes 0-1/10");
    }
}
