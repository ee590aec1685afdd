//! The `videos` table: what the container says about each video file, joined with its file row.

use serde_json::{Map, Value};

use super::Fut;
use super::files::FileRow;
use crate::media::container::{MediaInfo, TimeIndex};

/// A catalogued video and its file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Video {
    /// The file (its id is the video's id).
    pub(crate) file: FileRow,
    /// A human title (from the file name unless metadata says otherwise).
    pub(crate) title: String,
    /// `mp4`, `webm` or `unknown`.
    pub(crate) container: String,
    /// Duration in milliseconds, when the container says.
    pub(crate) duration_ms: Option<i64>,
    /// Frame width in pixels.
    pub(crate) width: Option<i64>,
    /// Frame height in pixels.
    pub(crate) height: Option<i64>,
    /// Normalised video codec (`h264`, `vp9`, …).
    pub(crate) video_codec: Option<String>,
    /// Normalised audio codec (`aac`, `opus`, …).
    pub(crate) audio_codec: Option<String>,
    /// Whether playback can start before the end of the file is fetched.
    pub(crate) faststart: bool,
    /// Why the container could not be read, if it could not.
    pub(crate) parse_error: Option<String>,
    /// Counted views.
    pub(crate) view_count: i64,
    /// When it was first catalogued, seconds since the epoch.
    pub(crate) created_at: i64,
    /// Who uploaded it; `None` for media found in the media roots (the admins').
    pub(crate) owner: Option<Owner>,
    /// Who may see it.
    pub(crate) visibility: Visibility,
    /// What its owner says about it; empty when nothing.
    pub(crate) description: String,
}

/// The owner of a video, as pages and the API name them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Owner {
    /// The user's id.
    pub(crate) id: String,
    /// The user's display name.
    pub(crate) display_name: String,
}

/// Who may see a video (the `videos.visibility` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Visibility {
    /// Listed in the library and the API, watchable by anyone.
    #[default]
    Public,
    /// Watchable by anyone with the link, never listed.
    Unlisted,
    /// Only the owner and admins, or whoever holds a signed stream URL.
    Private,
}

impl Visibility {
    /// Every value, in the order a form offers them.
    pub(crate) const ALL: [Visibility; 3] = [Visibility::Public, Visibility::Unlisted, Visibility::Private];

    /// The column's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Visibility::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| "must be public, unlisted or private".to_owned())
    }
}

/// A change to a video's owner-editable fields; `None` leaves a field as it is. The values are
/// checked when it is built (`library::manage::Edit`), and again by the table's CHECKs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VideoEdit {
    /// A new title (1 to 300 characters).
    pub(crate) title: Option<String>,
    /// A new description (at most 5,000 characters).
    pub(crate) description: Option<String>,
    /// A new visibility.
    pub(crate) visibility: Option<Visibility>,
}

/// Stored index points are at least this far apart in media time: finer than any seek a
/// player makes on a timeline, and small enough for a two-hour film (about 7,200 points).
const INDEX_GAP_MS: u64 = 1000;

/// Free-form metadata: always a JSON object, checked when built, never at write time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Metadata(Map<String, Value>);

impl TryFrom<Value> for Metadata {
    type Error = &'static str;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err("metadata must be a JSON object"),
        }
    }
}

/// What the scanner writes for one video file.
pub(crate) struct VideoRecord<'a> {
    /// The file's id.
    pub(crate) file_id: &'a str,
    /// The title.
    pub(crate) title: &'a str,
    /// The container's facts, or why they could not be read.
    pub(crate) probe: &'a Result<MediaInfo, String>,
    /// Free-form metadata.
    pub(crate) metadata: &'a Metadata,
}

impl Video {
    /// The file extension the stream URL carries, from the media type.
    pub(crate) fn extension(&self) -> &'static str {
        crate::media::sniff::extension(&self.file.mime).unwrap_or("bin")
    }

    /// The owner's user id; `None` for media found in the media roots.
    pub(crate) fn owner_id(&self) -> Option<&str> {
        self.owner.as_ref().map(|o| o.id.as_str())
    }

    /// `/stream/{id}.{ext}`: a computed property, never stored.
    pub(crate) fn stream_url(&self) -> String {
        format!("/stream/{}.{}", self.file.id, self.extension())
    }
}

/// The `videos` repository; rows are written through [`super::files::Files::catalog`].
pub(crate) trait Videos {
    /// The video with this id.
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Video>>;

    /// A page of the public videos, newest first (served by `videos_by_created`).
    fn list(&self, limit: u32, offset: u64) -> Fut<'_, Vec<Video>>;

    /// How many public videos there are.
    fn count(&self) -> Fut<'_, i64>;

    /// Every video of one owner, whatever its visibility, newest first (`videos_by_owner`).
    fn by_owner<'a>(&'a self, owner_id: &'a str, limit: u32) -> Fut<'a, Vec<Video>>;

    /// Sets a video's title (1 to 300 characters, checked by the caller and the table).
    fn set_title<'a>(&'a self, id: &'a str, title: &'a str) -> Fut<'a, ()>;

    /// Records who uploaded a video.
    fn set_owner<'a>(&'a self, id: &'a str, owner_id: &'a str) -> Fut<'a, ()>;

    /// Applies an owner's edit in one statement; whether the video exists.
    fn edit<'a>(&'a self, id: &'a str, edit: &'a VideoEdit) -> Fut<'a, bool>;

    /// The byte→time index of a video (empty when the container had none).
    fn time_index<'a>(&'a self, id: &'a str) -> Fut<'a, TimeIndex>;
}

/// A [`VideoRecord`] as column values, the same for every backend.
pub(crate) struct VideoColumns<'a> {
    /// The file's id.
    pub(crate) file_id: &'a str,
    /// The title.
    pub(crate) title: &'a str,
    /// `mp4`, `webm` or `unknown`.
    pub(crate) container: &'a str,
    /// Duration in milliseconds.
    pub(crate) duration_ms: Option<i64>,
    /// Frame width in pixels.
    pub(crate) width: Option<i64>,
    /// Frame height in pixels.
    pub(crate) height: Option<i64>,
    /// Normalised video codec.
    pub(crate) video_codec: Option<&'a str>,
    /// Normalised audio codec.
    pub(crate) audio_codec: Option<&'a str>,
    /// Whether playback can start before the end of the file is fetched.
    pub(crate) faststart: bool,
    /// Why the container could not be read.
    pub(crate) parse_error: Option<&'a str>,
    /// The thinned byte→time index as JSON `[[byte, ms], …]`.
    pub(crate) time_index: String,
    /// The metadata as a JSON object.
    pub(crate) metadata: String,
}

impl<'a> VideoRecord<'a> {
    /// The column values to write; an unreadable container is stored as `unknown` with its error.
    pub(crate) fn columns(&self) -> VideoColumns<'a> {
        let (info, error) = match self.probe {
            Ok(info) => (Some(info), None),
            Err(error) => (None, Some(error.as_str())),
        };
        let time_index = info.map_or_else(
            || "[]".to_owned(),
            |i| serde_json::to_string(&i.time_index.thinned(INDEX_GAP_MS)).unwrap_or_default(),
        );
        VideoColumns {
            file_id: self.file_id,
            title: self.title,
            container: info.map_or("unknown", |i| i.container.as_str()),
            duration_ms: info.and_then(|i| i.duration_ms).map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            width: info.and_then(|i| i.width).map(i64::from),
            height: info.and_then(|i| i.height).map(i64::from),
            video_codec: info.and_then(|i| i.video_codec.as_deref()),
            audio_codec: info.and_then(|i| i.audio_codec.as_deref()),
            faststart: info.is_none_or(|i| i.faststart),
            parse_error: error,
            time_index,
            metadata: serde_json::to_string(&self.metadata.0).unwrap_or_else(|_| "{}".to_owned()),
        }
    }
}

/// Reads a stored time index; the column is CHECKed to be valid JSON, and a shape from an older
/// version reads as empty.
pub(crate) fn parse_time_index(json: Option<&str>) -> TimeIndex {
    json.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_must_be_an_object() {
        assert!(Metadata::try_from(serde_json::json!({"a": 1})).is_ok());
        assert!(Metadata::try_from(serde_json::json!([1, 2])).is_err());
        assert!(Metadata::try_from(serde_json::json!("text")).is_err());
    }
}
