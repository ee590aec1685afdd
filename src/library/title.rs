//! Video titles: 1 to [`MAX_CHARS`] characters, never blank, the same bound the `videos` table
//! checks (`migrations/0001_catalog.sql`), so no title reaches the database to be refused there.

/// The longest title, in characters.
pub(crate) const MAX_CHARS: usize = 300;

/// `text` trimmed, if it is 1 to [`MAX_CHARS`] characters (a title a user typed: too long is
/// an error, not silently cut).
pub(crate) fn parse(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= MAX_CHARS).then(|| text.to_owned())
}

/// `text` trimmed and cut to [`MAX_CHARS`] characters, if anything is left (a title derived
/// from a file name or upload metadata).
pub(crate) fn clamp(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_CHARS).collect())
}

/// `holiday_clip-2024.mp4` → `holiday clip 2024`; the whole name when nothing else is left.
pub(crate) fn from_file_name(relative: &str) -> String {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let spaced: String = stem.chars().map(|c| if c == '_' || c == '-' { ' ' } else { c }).collect();
    clamp(&spaced).or_else(|| clamp(name)).unwrap_or_else(|| "untitled".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(from_file_name("a/holiday_clip-2024.mp4"), "holiday clip 2024");
        assert_eq!(from_file_name("___.mp4"), "___.mp4");
        assert_eq!(from_file_name(&format!("{}.mp4", "x".repeat(400))).chars().count(), MAX_CHARS);
    }

    #[test]
    fn typed_titles_are_trimmed_and_bounded_but_not_cut() {
        assert_eq!(parse("  Holiday  ").as_deref(), Some("Holiday"));
        assert_eq!(parse(&"é".repeat(MAX_CHARS)).map(|t| t.chars().count()), Some(MAX_CHARS));
        assert_eq!(parse(&"é".repeat(MAX_CHARS + 1)), None);
        assert_eq!(parse(" \t "), None);
        assert_eq!(clamp(&"é".repeat(MAX_CHARS + 1)).map(|t| t.chars().count()), Some(MAX_CHARS));
        assert_eq!(clamp("  "), None);
    }
}
