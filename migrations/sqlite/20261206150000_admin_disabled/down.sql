ALTER TABLE admins DROP COLUMN disabled_at;
