-- Alternative text for uploaded images (PATCH /api/images/{id}): what a screen reader says in
-- place of the picture. NULL is "not written yet"; '' is a decorative image, as alt="" in HTML.
-- 500 characters: more is a description, not alt text, and the bound keeps a row small.
ALTER TABLE images ADD COLUMN alt TEXT NULL CHECK (length(alt) <= 500);
