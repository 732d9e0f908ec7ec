-- The schema before soft delete cannot hold two users with one userName:
-- soft-deleted users are purged first (their memberships are already gone,
-- their index rows go by cascade).
DELETE FROM users WHERE deleted_at IS NOT NULL;
DROP INDEX users_deleted_at;
DROP INDEX users_created_id;
CREATE INDEX users_created_id ON users (created, id);
DROP INDEX users_user_name_ci;
ALTER TABLE users ADD CONSTRAINT users_user_name_ci_key UNIQUE (user_name_ci);
ALTER TABLE users DROP COLUMN deleted_at;
