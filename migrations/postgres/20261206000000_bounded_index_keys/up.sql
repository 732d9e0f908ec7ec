-- Index keys of bounded size for every indexed column a SCIM client fills.
-- A B-tree entry in PostgreSQL holds at most about 2,704 bytes, and a
-- client may send any value up to the request body limit (a certificate
-- in x509Certificates, a long displayName): indexed whole, such a value
-- fails the write. So these indexes hold md5() of the value (32 bytes,
-- whatever its length), and every query that uses one compares both the
-- hash and the value itself (`md5(col) = md5($1) AND col = $1`, written
-- by sql::SqlBuilder::push_text_eq): the hash finds the row through the
-- index, the value makes the match exact.
--
-- Uniqueness (userName and group displayName, case-insensitively) rests
-- on the unique hash: two different values with one MD5 would be refused
-- as a conflict, never stored as one. The index names stay as they were.

DROP INDEX users_user_name_ci;
CREATE UNIQUE INDEX users_user_name_ci ON users (md5(user_name_ci)) WHERE deleted_at IS NULL;
DROP INDEX users_external_id;
CREATE INDEX users_external_id ON users (md5(external_id));
DROP INDEX users_display_name_ci;
CREATE INDEX users_display_name_ci ON users (md5(display_name_ci));

DROP INDEX user_values_attr_value_ci;
CREATE INDEX user_values_attr_value_ci ON user_values (attr, md5(value_ci));

ALTER TABLE groups DROP CONSTRAINT groups_display_name_ci_key;
CREATE UNIQUE INDEX groups_display_name_ci ON groups (md5(display_name_ci));
DROP INDEX groups_external_id;
CREATE INDEX groups_external_id ON groups (md5(external_id));
