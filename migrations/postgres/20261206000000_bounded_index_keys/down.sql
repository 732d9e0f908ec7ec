-- Back to indexes on the whole values. This fails if a stored value is too
-- long for a B-tree entry (about 2,704 bytes): such a value cannot be
-- indexed whole.
DROP INDEX groups_external_id;
CREATE INDEX groups_external_id ON groups (external_id);
DROP INDEX groups_display_name_ci;
ALTER TABLE groups ADD CONSTRAINT groups_display_name_ci_key UNIQUE (display_name_ci);

DROP INDEX user_values_attr_value_ci;
CREATE INDEX user_values_attr_value_ci ON user_values (attr, value_ci);

DROP INDEX users_display_name_ci;
CREATE INDEX users_display_name_ci ON users (display_name_ci);
DROP INDEX users_external_id;
CREATE INDEX users_external_id ON users (external_id);
DROP INDEX users_user_name_ci;
CREATE UNIQUE INDEX users_user_name_ci ON users (user_name_ci) WHERE deleted_at IS NULL;
