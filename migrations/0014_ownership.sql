-- Ownership of videos (accounts part 2): who may see a video, and what its owner says about it.
-- `videos.owner_id` (0006) is written by uploads from now on; media found in the media roots
-- stays owned by no one. A tus upload remembers who created it, so the video it becomes at
-- completion is theirs whoever sends the last bytes.

-- public: listed everywhere; unlisted: watchable by link, never listed; private: the owner and
-- admins only (others get a 404, or a signed expiring stream URL).
ALTER TABLE videos ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public'
    CHECK (visibility IN ('public', 'unlisted', 'private'));
-- Bounded like a long post (library::manage::MAX_DESCRIPTION_CHARS); '' when there is none.
ALTER TABLE videos ADD COLUMN description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 5000);
ALTER TABLE tus_uploads ADD COLUMN owner_id TEXT NULL REFERENCES users (id) ON DELETE SET NULL;

-- "My videos": one owner's videos, newest first, without a sort.
CREATE INDEX videos_by_owner ON videos (owner_id, created_at DESC, file_id);
