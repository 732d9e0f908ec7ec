ALTER TABLE admin_sessions DROP COLUMN org_id;
