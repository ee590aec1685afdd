//! What an owner or an admin does to a catalogued video: edit what it says and who sees it, or
//! delete it with everything that hangs off it.

use crate::db::videos::{Video, VideoEdit};
use crate::library::{Library, UPLOADS, title};

/// The longest description, in characters (the table CHECKs the same bound).
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 5000;

/// An edit from the user's text, checked field by field; the error is `field: reason`.
pub(crate) fn parse_edit(
    title_text: Option<&str>,
    description: Option<&str>,
    visibility: Option<&str>,
) -> Result<VideoEdit, String> {
    let title = title_text
        .map(|text| title::parse(text).ok_or(format!("title: must be 1 to {} characters", title::MAX_CHARS)))
        .transpose()?;
    let description = description
        .map(|text| {
            // Browsers send a textarea's line breaks as CRLF; stored as LF, they count once.
            let text = text.trim().replace("\r\n", "\n");
            if text.chars().count() > MAX_DESCRIPTION_CHARS {
                return Err(format!("description: must be at most {MAX_DESCRIPTION_CHARS} characters"));
            }
            if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err("description: must not contain control characters".to_owned());
            }
            Ok(text)
        })
        .transpose()?;
    let visibility =
        visibility.map(|text| text.parse().map_err(|e| format!("visibility: {e}"))).transpose()?;
    Ok(VideoEdit { title, description, visibility })
}

/// Why a video could not be deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoveError {
    /// The file is in a media root, which kino only reads: whoever manages that folder removes
    /// the file, and the next scan drops its catalog rows.
    #[error(
        "this video is a file in a media root, which kino never writes to; remove the file from the media root and run `kino scan`"
    )]
    InMediaRoot,
    /// The disk or the database failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Library {
    /// Deletes an uploaded video: its file, then its catalog rows (the `files` row; the video, its
    /// views and viewing sessions go with it by `ON DELETE CASCADE`). In that order because a
    /// row left by a failure after the file went is dropped by the next scan, whereas a file
    /// left without its row would come back, ownerless, at the next scan. A stream in flight
    /// keeps reading its open descriptor until it ends (unix keeps an unlinked inode's data).
    pub(crate) async fn remove(&self, video: &Video) -> Result<(), RemoveError> {
        if video.file.root != UPLOADS {
            return Err(RemoveError::InMediaRoot);
        }
        let root = self.roots.iter().find(|r| r.label == UPLOADS).expect("the uploads root is always there");
        let path = root.path.join(&video.file.path);
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(error).context(format!("deleting {}", path.display())).into());
            }
            _ => {}
        }
        self.db.files().delete(&video.file.id).await.map_err(anyhow::Error::from)?;
        self.open_files.invalidate(&(UPLOADS.to_owned(), video.file.path.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::videos::Visibility;

    #[test]
    fn edits_are_checked_field_by_field() {
        let edit = parse_edit(Some("  New  "), Some("line\r\nnext"), Some("private")).unwrap();
        assert_eq!(edit.title.as_deref(), Some("New"));
        assert_eq!(edit.description.as_deref(), Some("line\nnext"));
        assert_eq!(edit.visibility, Some(Visibility::Private));
        assert_eq!(parse_edit(None, None, None).unwrap(), VideoEdit::default());
        assert_eq!(parse_edit(Some(" "), None, None).unwrap_err(), "title: must be 1 to 300 characters");
        let long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert!(parse_edit(None, Some(&long), None).unwrap_err().starts_with("description: "));
        assert!(parse_edit(None, Some("a\u{0}b"), None).unwrap_err().starts_with("description: "));
        assert_eq!(
            parse_edit(None, None, Some("secret")).unwrap_err(),
            "visibility: must be public, unlisted or private"
        );
    }
}
