//! Captions: caption files found next to videos in the media roots or uploaded by a video's
//! owner, checked, stored in the `captions` table and served as WebVTT.

pub(crate) mod cue;
pub(crate) mod lang;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use self::cue::{Format, Problem};
use crate::db::captions::{CaptionFile, CaptionRow};
use crate::db::files::FileRow;
use crate::db::{Db, now_secs};

/// The largest caption file taken (2 MiB): two hours of dense subtitles are about 150 KB, so
/// anything near this is not a caption file; the bound also keeps a row small (migration 0016).
pub(crate) const MAX_BYTES: usize = 2 * 1024 * 1024;

/// The longest label, in characters (the column's CHECK).
pub(crate) const MAX_LABEL_CHARS: usize = 100;

/// The media type a `<track>` is served with.
pub(crate) const WEBVTT_TYPE: &str = "text/vtt; charset=utf-8";

/// What a caption file's name says: the path of the video it belongs to without its extension,
/// its language, and its format. `dir/name.en.vtt` → (`dir/name`, `en`, vtt); `name.srt` →
/// (`name`, `und`, srt). A middle suffix that is no language tag is part of the video's name.
pub(crate) fn name_parts(path: &str) -> Option<(&str, Option<String>, Format)> {
    let (base, extension) = path.rsplit_once('.')?;
    let format = Format::from_extension(extension)?;
    let name_start = base.rfind('/').map_or(0, |i| i + 1);
    if let Some((stem, tag)) = base[name_start..].rsplit_once('.')
        && !stem.is_empty()
        && let Some(lang) = lang::parse(tag)
    {
        return Some((&base[..name_start + stem.len()], Some(lang), format));
    }
    Some((base, None, format))
}

/// Attaches the caption files of one media root to the videos beside them: for each `.vtt` or
/// `.srt` file that is new, changed (`updated`, by file id) or not yet attached, finds the video
/// of the same name in the same folder (`name.en.vtt` → `name.mp4`; `name.en.mp4` first, if
/// there is one), reads and checks the text, and writes its row. Returns how many were written.
pub(crate) async fn attach_found(
    db: &Db,
    root: &str,
    root_path: &Path,
    updated: &HashSet<String>,
) -> anyhow::Result<usize> {
    let files = db.files().in_root(root).await?;
    let attached: HashSet<String> = db.captions().attached_in_root(root).await?.into_iter().collect();
    let videos: HashMap<&str, &FileRow> = files
        .iter()
        .filter(|f| f.mime.starts_with("video/"))
        .filter_map(|f| Some((f.path.rsplit_once('.')?.0, f)))
        .collect();
    let mut written = 0;
    for file in &files {
        if attached.contains(&file.id) && !updated.contains(&file.id) {
            continue;
        }
        let Some((base, lang, format)) = name_parts(&file.path) else { continue };
        // `name.en.vtt` belongs to `name.en.mp4` if there is one, else to `name.mp4`.
        let whole = file.path.rsplit_once('.').map_or(base, |(b, _)| b);
        let (video, lang) = match (videos.get(whole), videos.get(base)) {
            (Some(video), _) => (video, lang::UNDETERMINED.to_owned()),
            (None, Some(video)) => (video, lang.unwrap_or_else(|| lang::UNDETERMINED.to_owned())),
            (None, None) => continue,
        };
        let Some(bytes) = read_small(&root_path.join(&file.path)).await? else {
            tracing::warn!(path = %file.path, "skipping a caption file larger than {MAX_BYTES} bytes");
            continue;
        };
        let (_, problems) = cue::webvtt(&bytes, format);
        if let Some(first) = problems.first() {
            tracing::warn!(path = %file.path, problems = problems.len(), %first, "caption file has malformed cues");
        }
        let caption = CaptionRow {
            id: crate::id::random_id::<9>(),
            video_id: video.id.clone(),
            label: lang::label(&lang),
            lang,
            format: format.as_str().to_owned(),
            file: Some(CaptionFile { id: file.id.clone(), root: root.to_owned(), path: file.path.clone() }),
            warnings: i64::try_from(problems.len()).unwrap_or(i64::MAX),
            created_at: now_secs(),
        };
        db.captions().attach_file(&caption).await?;
        written += 1;
    }
    Ok(written)
}

/// The bytes of a file of at most [`MAX_BYTES`]; `None` when it is larger.
async fn read_small(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let file = std::fs::File::open(&path)?;
        let mut bytes = Vec::new();
        file.take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes)?;
        Ok((bytes.len() <= MAX_BYTES).then_some(bytes))
    })
    .await?
}

/// Checks an uploaded caption file: its format (WebVTT by its signature, else SubRip), refused
/// with the first problem when any block is not a cue, so an upload is never half served.
pub(crate) fn check_upload(bytes: &[u8]) -> Result<Format, Problem> {
    let text = cue::decode(bytes);
    let format = Format::detect(&text);
    match cue::parse(&text, format).problems.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(format),
    }
}

/// A label given with an upload, trimmed: 1 to [`MAX_LABEL_CHARS`] characters, no control ones.
pub(crate) fn parse_label(label: &str) -> Result<String, String> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
        return Err(format!("label: must be 1 to {MAX_LABEL_CHARS} characters"));
    }
    if label.chars().any(char::is_control) {
        return Err("label: must not contain control characters".into());
    }
    Ok(label.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_the_video_and_the_language() {
        assert_eq!(name_parts("a/name.en.vtt"), Some(("a/name", Some("en".into()), Format::Vtt)));
        assert_eq!(name_parts("name.pt-br.srt"), Some(("name", Some("pt-BR".into()), Format::Srt)));
        assert_eq!(name_parts("name.srt"), Some(("name", None, Format::Srt)));
        // Not a language: part of the name.
        assert_eq!(name_parts("my.holiday.vtt"), Some(("my.holiday", None, Format::Vtt)));
        // A dot in a folder's name is not a suffix.
        assert_eq!(name_parts("v1.0/name.vtt"), Some(("v1.0/name", None, Format::Vtt)));
        assert_eq!(name_parts("name.mp4"), None);
        assert_eq!(name_parts(".en.vtt"), Some((".en", None, Format::Vtt)));
    }

    #[test]
    fn uploads_are_checked_whole() {
        assert_eq!(check_upload(b"WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n"), Ok(Format::Vtt));
        assert_eq!(check_upload(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n"), Ok(Format::Srt));
        let bad = check_upload(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\nnonsense\n").unwrap_err();
        assert_eq!(bad.to_string(), "line 6: expected start --> end, found \"nonsense\"");
        assert_eq!(parse_label("  Director's commentary ").as_deref(), Ok("Director's commentary"));
        assert!(parse_label(" ").is_err() && parse_label("a\nb").is_err());
    }

    /// A root with the H.264 sample as `a.mp4` and `captions` beside it, scanned.
    async fn scanned(dir: &Path, captions: &[(&str, &str)]) -> Db {
        let media = dir.join("media");
        std::fs::create_dir_all(&media).unwrap();
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4"), media.join("a.mp4"))
            .unwrap();
        for (name, text) in captions {
            std::fs::write(media.join(name), text).unwrap();
        }
        let db = Db::open(&dir.join("data")).await.unwrap();
        rescan(&db, &media).await;
        db
    }

    async fn rescan(db: &Db, media: &Path) {
        let root = crate::library::Root { label: "media".into(), path: media.canonicalize().unwrap() };
        crate::library::scan::scan(db, &crate::library::hash::HashMeter::default(), &[root]).await.unwrap();
    }

    #[tokio::test]
    async fn scans_attach_once_follow_changes_and_drop_captions_whose_file_went() {
        let dir = tempfile::tempdir().unwrap();
        let vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n";
        let db = scanned(dir.path(), &[("a.en.vtt", vtt), ("a.srt", "nonsense\n"), ("b.fr.vtt", vtt)]).await;
        let video = crate::library::scan::file_id("media", "a.mp4");
        let first = db.captions().by_video(&video).await.unwrap();
        let summary: Vec<_> = first.iter().map(|c| (c.lang.as_str(), c.label.as_str(), c.warnings)).collect();
        // `b.fr.vtt` has no video beside it; `a.srt` has no language and no cue.
        assert_eq!(summary, [("en", "English", 0), ("und", "Subtitles", 1)]);
        let media = dir.path().join("media");
        rescan(&db, &media).await;
        assert_eq!(db.captions().by_video(&video).await.unwrap(), first, "a second scan changes nothing");
        // A fixed file is read again (same caption, no warning now); a removed one goes.
        std::fs::write(media.join("a.srt"), "1\n00:00:01,000 --> 00:00:02,000\nfixed\n").unwrap();
        std::fs::remove_file(media.join("a.en.vtt")).unwrap();
        rescan(&db, &media).await;
        let after = db.captions().by_video(&video).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].id.as_str(), after[0].warnings), (first[1].id.as_str(), 0));
    }
}
