//! Caption languages: BCP 47-ish tags (`en`, `pt-BR`, `zh-Hant`) and the label a player shows.

/// Labels of common languages, by primary subtag (ISO 639-1, and `und` for "no language given").
const LABELS: &[(&str, &str)] = &[
    ("ar", "Arabic"),
    ("ca", "Catalan"),
    ("cs", "Czech"),
    ("da", "Danish"),
    ("de", "German"),
    ("el", "Greek"),
    ("en", "English"),
    ("es", "Spanish"),
    ("fa", "Persian"),
    ("fi", "Finnish"),
    ("fr", "French"),
    ("he", "Hebrew"),
    ("hi", "Hindi"),
    ("hu", "Hungarian"),
    ("id", "Indonesian"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("nb", "Norwegian Bokmål"),
    ("nl", "Dutch"),
    ("no", "Norwegian"),
    ("pl", "Polish"),
    ("pt", "Portuguese"),
    ("ro", "Romanian"),
    ("ru", "Russian"),
    ("sv", "Swedish"),
    ("th", "Thai"),
    ("tr", "Turkish"),
    ("uk", "Ukrainian"),
    ("und", "Subtitles"),
    ("vi", "Vietnamese"),
    ("zh", "Chinese"),
];

/// The tag of a file named without a language (`name.vtt`): BCP 47's "undetermined".
pub(crate) const UNDETERMINED: &str = "und";

/// The longest tag taken (`zh-Hant-TW` is 10; private-use monsters are not captions' business).
const MAX_TAG: usize = 35;

/// `tag` in its canonical case (`pt-br` → `pt-BR`, `ZH-hant` → `zh-Hant`) if it looks like a
/// BCP 47 language tag: a primary subtag of 2 or 3 letters, then subtags of 1 to 8 letters or
/// digits. Registry membership is not checked: a player shows any tag.
pub(crate) fn parse(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.len() > MAX_TAG {
        return None;
    }
    let mut parts = tag.split('-');
    let primary = parts.next()?;
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut canonical = primary.to_ascii_lowercase();
    for part in parts {
        if !(1..=8).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        canonical.push('-');
        // RFC 5646 §2.1.1: regions upper case, scripts title case, the rest lower case.
        match part.len() {
            2 if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                canonical.push_str(&part.to_ascii_uppercase())
            }
            4 if part.bytes().all(|b| b.is_ascii_alphabetic()) => {
                canonical.push_str(&part[..1].to_ascii_uppercase());
                canonical.push_str(&part[1..].to_ascii_lowercase());
            }
            _ => canonical.push_str(&part.to_ascii_lowercase()),
        }
    }
    Some(canonical)
}

/// The label of a canonical tag: the language's name, with the rest of the tag in brackets
/// (`pt-BR` → "Portuguese (pt-BR)"); the tag itself when the language is not in the table.
pub(crate) fn label(tag: &str) -> String {
    let primary = tag.split('-').next().unwrap_or(tag);
    match LABELS.iter().find(|(code, _)| *code == primary) {
        Some((_, name)) if primary == tag => (*name).to_owned(),
        Some((_, name)) => format!("{name} ({tag})"),
        None => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_and_canonicalised() {
        assert_eq!(parse("en").as_deref(), Some("en"));
        assert_eq!(parse("PT-br").as_deref(), Some("pt-BR"));
        assert_eq!(parse("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(parse("es-419").as_deref(), Some("es-419"));
        for bad in ["", "e", "english", "en_US", "en-", "1a", "en-toolongsubtag", "fr.srt"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn labels_name_the_language_or_show_the_code() {
        assert_eq!(label("en"), "English");
        assert_eq!(label("fr"), "French");
        assert_eq!(label("pt-BR"), "Portuguese (pt-BR)");
        assert_eq!(label("tlh"), "tlh");
        assert_eq!(label(UNDETERMINED), "Subtitles");
    }
}
