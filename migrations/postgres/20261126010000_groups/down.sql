ALTER TABLE users DROP COLUMN display_name;
DROP TABLE group_members;
DROP TABLE groups;
