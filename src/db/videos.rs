//! The `videos` table: what the container says about each video file, joined with its file row.

use serde_json::{Map, Value};
use sqlx::{FromRow, SqliteExecutor};

use crate::db::files::FileRow;
use crate::media::container::{MediaInfo, TimeIndex};

/// A query selecting a video joined with its file, followed by `$tail`; a macro so the SQL stays
/// a compile-time constant (sqlx refuses strings built at run time unless audited).
macro_rules! select_videos {
    ($tail:literal) => {
        concat!(
            "SELECT f.id, v.title, v.container, v.duration_ms, v.width, v.height,
                v.video_codec, v.audio_codec, v.faststart, v.parse_error, v.view_count, v.created_at,
                f.root, f.path, f.size, f.mtime_ns, f.hash, f.mime
             FROM videos v JOIN files f ON f.id = v.file_id ",
            $tail
        )
    };
}

/// A catalogued video and its file.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub(crate) struct Video {
    /// The file (its id is the video's id).
    #[sqlx(flatten)]
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
    /// The video with this id.
    pub(crate) async fn find(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(select_videos!("WHERE v.file_id = $1")).bind(id).fetch_optional(db).await
    }

    /// A page of videos, newest first (served by `videos_by_created`).
    pub(crate) async fn list(
        db: impl SqliteExecutor<'_>,
        limit: u32,
        offset: u64,
    ) -> sqlx::Result<Vec<Self>> {
        sqlx::query_as(select_videos!("ORDER BY v.created_at DESC, v.file_id LIMIT $1 OFFSET $2"))
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(db)
            .await
    }

    /// How many videos there are.
    pub(crate) async fn count(db: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM videos").fetch_one(db).await
    }

    /// Sets a video's title (1 to 300 characters, checked by the caller and the table).
    pub(crate) async fn set_title(db: impl SqliteExecutor<'_>, id: &str, title: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE videos SET title = $1 WHERE file_id = $2")
            .bind(title)
            .bind(id)
            .execute(db)
            .await?;
        Ok(())
    }

    /// The byte→time index of a video (empty when the container had none).
    pub(crate) async fn time_index(db: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<TimeIndex> {
        let json: Option<String> = sqlx::query_scalar("SELECT time_index FROM videos WHERE file_id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
        // The column is CHECKed to be valid JSON; a shape from an older version reads as empty.
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()).unwrap_or_default())
    }

    /// Writes what the scanner learnt; keeps the view count and first-seen time of an existing row.
    pub(crate) async fn upsert(
        db: impl SqliteExecutor<'_>,
        record: &VideoRecord<'_>,
        now: i64,
    ) -> sqlx::Result<()> {
        let (info, error) = match record.probe {
            Ok(info) => (Some(info), None),
            Err(error) => (None, Some(error.as_str())),
        };
        let index = info.map_or_else(
            || "[]".to_owned(),
            |i| serde_json::to_string(&i.time_index.thinned(INDEX_GAP_MS)).unwrap_or_default(),
        );
        let metadata = serde_json::to_string(&record.metadata.0).unwrap_or_else(|_| "{}".to_owned());
        sqlx::query(
            "INSERT INTO videos (file_id, title, container, duration_ms, width, height, video_codec,
                 audio_codec, faststart, parse_error, time_index, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (file_id) DO UPDATE SET
                 title = excluded.title, container = excluded.container,
                 duration_ms = excluded.duration_ms, width = excluded.width, height = excluded.height,
                 video_codec = excluded.video_codec, audio_codec = excluded.audio_codec,
                 faststart = excluded.faststart, parse_error = excluded.parse_error,
                 time_index = excluded.time_index, metadata = excluded.metadata",
        )
        .bind(record.file_id)
        .bind(record.title)
        .bind(info.map_or("unknown", |i| i.container.as_str()))
        .bind(info.and_then(|i| i.duration_ms).map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
        .bind(info.and_then(|i| i.width).map(i64::from))
        .bind(info.and_then(|i| i.height).map(i64::from))
        .bind(info.and_then(|i| i.video_codec.as_deref()))
        .bind(info.and_then(|i| i.audio_codec.as_deref()))
        .bind(info.is_none_or(|i| i.faststart))
        .bind(error)
        .bind(index)
        .bind(metadata)
        .bind(now)
        .execute(db)
        .await?;
        Ok(())
    }

    /// The file extension the stream URL carries, from the media type.
    pub(crate) fn extension(&self) -> &'static str {
        crate::media::sniff::extension(&self.file.mime).unwrap_or("bin")
    }

    /// `/stream/{id}.{ext}`: a computed property, never stored.
    pub(crate) fn stream_url(&self) -> String {
        format!("/stream/{}.{}", self.file.id, self.extension())
    }
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
