ALTER TABLE change_log DROP COLUMN external_id;
