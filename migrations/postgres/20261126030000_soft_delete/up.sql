-- Soft delete (runtime setting `deprovisioning = soft`): DELETE /Users/{id}
-- keeps the row and sets deleted_at; such a user is invisible to the SCIM
-- API and purged after the retention period. userName stays unique
-- (case-insensitively) among the users that are not deleted only, so the
-- identity provider may create the same userName again.
ALTER TABLE users ADD COLUMN deleted_at TEXT NULL;
ALTER TABLE users DROP CONSTRAINT users_user_name_ci_key;
CREATE UNIQUE INDEX users_user_name_ci ON users (user_name_ci) WHERE deleted_at IS NULL;
-- Every query of live users says `deleted_at IS NULL`.
DROP INDEX users_created_id;
CREATE INDEX users_created_id ON users (created, id) WHERE deleted_at IS NULL;
-- The purge: soft-deleted users by deletion time.
CREATE INDEX users_deleted_at ON users (deleted_at) WHERE deleted_at IS NOT NULL;
