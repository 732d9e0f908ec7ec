-- The PostgreSQL flavour of this migration indexes md5() of client-filled
-- values, because a PostgreSQL B-tree entry holds at most about 2,704
-- bytes. SQLite stores a long index key on overflow pages, so its indexes
-- keep the whole values and nothing changes here; the folder exists so
-- that both backends have the same list of migrations.
SELECT 1;
