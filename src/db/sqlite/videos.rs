//! The `videos` repository on SQLite.

use super::Sqlite;
use crate::db::Fut;
use crate::db::files::FileRow;
use crate::db::videos::{Owner, Video, VideoEdit, Videos, parse_time_index};
use crate::media::container::TimeIndex;

/// A video joined with its file, flat as the query returns it.
struct VideoRow {
    id: String,
    title: String,
    container: String,
    duration_ms: Option<i64>,
    width: Option<i64>,
    height: Option<i64>,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    faststart: bool,
    parse_error: Option<String>,
    view_count: i64,
    created_at: i64,
    visibility: String,
    description: String,
    owner_id: Option<String>,
    owner_name: Option<String>,
    root: String,
    path: String,
    size: i64,
    mtime_ns: i64,
    hash: String,
    mime: String,
}

impl From<VideoRow> for Video {
    fn from(r: VideoRow) -> Self {
        let file = FileRow {
            id: r.id,
            root: r.root,
            path: r.path,
            size: r.size,
            mtime_ns: r.mtime_ns,
            hash: r.hash,
            mime: r.mime,
        };
        Video {
            file,
            title: r.title,
            container: r.container,
            duration_ms: r.duration_ms,
            width: r.width,
            height: r.height,
            video_codec: r.video_codec,
            audio_codec: r.audio_codec,
            faststart: r.faststart,
            parse_error: r.parse_error,
            view_count: r.view_count,
            created_at: r.created_at,
            owner: r.owner_id.zip(r.owner_name).map(|(id, display_name)| Owner { id, display_name }),
            // The column is CHECKed to the three names.
            visibility: r.visibility.parse().unwrap_or_default(),
            description: r.description,
        }
    }
}

/// Selects videos joined with their files, followed by `$tail`, with `$arg`s bound; a macro
/// because `query_as!` needs its SQL as literals (joined with `+`) to check it.
macro_rules! select_videos {
    ($tail:tt $(, $arg:expr)*) => {
        sqlx::query_as!(
            VideoRow,
            r#"SELECT f.id AS "id!", v.title, v.container, v.duration_ms, v.width, v.height,
                v.video_codec, v.audio_codec, v.faststart, v.parse_error, v.view_count, v.created_at,
                v.visibility, v.description, u.id AS "owner_id?", u.display_name AS "owner_name?",
                f.root, f.path, f.size, f.mtime_ns, f.hash, f.mime
             FROM videos v JOIN files f ON f.id = v.file_id LEFT JOIN users u ON u.id = v.owner_id "# + $tail
            $(, $arg)*
        )
    };
}

impl Videos for Sqlite {
    fn find<'a>(&'a self, id: &'a str) -> Fut<'a, Option<Video>> {
        Box::pin(async move {
            let row = select_videos!("WHERE v.file_id = $1", id).fetch_optional(&self.pool).await?;
            Ok(row.map(Video::from))
        })
    }

    fn list(&self, limit: u32, offset: u64) -> Fut<'_, Vec<Video>> {
        let (limit, offset) = (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX));
        Box::pin(async move {
            let rows = select_videos!(
                "WHERE v.visibility = 'public' ORDER BY v.created_at DESC, v.file_id LIMIT $1 OFFSET $2",
                limit,
                offset
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(Video::from).collect())
        })
    }

    fn count(&self) -> Fut<'_, i64> {
        Box::pin(
            sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM videos WHERE visibility = 'public'"#)
                .fetch_one(&self.pool),
        )
    }

    fn by_owner<'a>(&'a self, owner_id: &'a str, limit: u32) -> Fut<'a, Vec<Video>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            let rows = select_videos!(
                "WHERE v.owner_id = $1 ORDER BY v.created_at DESC, v.file_id LIMIT $2",
                owner_id,
                limit
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(Video::from).collect())
        })
    }

    fn set_owner<'a>(&'a self, id: &'a str, owner_id: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("UPDATE videos SET owner_id = $1 WHERE file_id = $2", owner_id, id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn edit<'a>(&'a self, id: &'a str, edit: &'a VideoEdit) -> Fut<'a, bool> {
        let visibility = edit.visibility.map(|v| v.as_str());
        Box::pin(async move {
            // COALESCE keeps a field the edit leaves out, so one statement applies any subset.
            let done = sqlx::query!(
                "UPDATE videos SET title = COALESCE($1, title), description = COALESCE($2, description),
                     visibility = COALESCE($3, visibility)
                 WHERE file_id = $4",
                edit.title,
                edit.description,
                visibility,
                id
            )
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn set_title<'a>(&'a self, id: &'a str, title: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query!("UPDATE videos SET title = $1 WHERE file_id = $2", title, id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn time_index<'a>(&'a self, id: &'a str) -> Fut<'a, TimeIndex> {
        Box::pin(async move {
            let json = sqlx::query_scalar!("SELECT time_index FROM videos WHERE file_id = $1", id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(parse_time_index(json.as_deref()))
        })
    }
}
