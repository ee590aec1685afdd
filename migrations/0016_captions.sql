-- Captions of videos (issue 17): WebVTT or SubRip text played as the watch page's <track>s.
-- Found next to a video in a media root (`name.en.vtt`), the row points at the caption file's
-- catalog row and goes with it; uploaded by the video's owner, the text is kept here, bounded
-- by captions::MAX_BYTES, so deleting the video (or the caption) leaves no file behind.
CREATE TABLE captions (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 32),
    video_id    TEXT NOT NULL REFERENCES videos (file_id) ON DELETE CASCADE,
    -- A BCP 47 language tag, canonical case ('und' when the file name gives none).
    lang        TEXT NOT NULL CHECK (length(lang) BETWEEN 2 AND 35),
    label       TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    format      TEXT NOT NULL CHECK (format IN ('vtt', 'srt')),
    file_id     TEXT NULL UNIQUE REFERENCES files (id) ON DELETE CASCADE,
    content     BLOB NULL CHECK (length(content) <= 2097152),
    -- Blocks that are not cues (served without them), counted when the text was read.
    warnings    INTEGER NOT NULL DEFAULT 0 CHECK (warnings >= 0),
    created_at  BIGINT NOT NULL,
    CHECK ((file_id IS NULL) <> (content IS NULL))
);

-- The watch page and the listing: one video's captions, in language order.
CREATE INDEX captions_by_video ON captions (video_id, lang, created_at, id);
