-- Soft delete (runtime setting `deprovisioning = soft`): DELETE /Users/{id}
-- keeps the row and sets deleted_at; such a user is invisible to the SCIM
-- API and purged after the retention period. userName stays unique
-- (case-insensitively) among the users that are not deleted only, so the
-- identity provider may create the same userName again.
--
-- SQLite cannot drop the inline UNIQUE of user_name_ci, so `users` is
-- rebuilt. Foreign keys are on (PRAGMA foreign_keys cannot change inside the
-- migration's transaction), and DROP TABLE users would cascade into
-- user_values (ON DELETE CASCADE): so user_values is copied aside, dropped,
-- and rebuilt after `users`.
CREATE TABLE users_new (
    id TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL,
    user_name_ci TEXT NOT NULL,
    external_id TEXT NULL,
    display_name_ci TEXT NULL,
    active BOOLEAN NOT NULL,
    resource TEXT NOT NULL,
    password_hash TEXT NULL,
    version BIGINT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    display_name TEXT NULL,
    deleted_at TEXT NULL
);
INSERT INTO users_new (id, user_name, user_name_ci, external_id, display_name_ci,
    active, resource, password_hash, version, created, last_modified, display_name)
SELECT id, user_name, user_name_ci, external_id, display_name_ci,
    active, resource, password_hash, version, created, last_modified, display_name
FROM users;

CREATE TABLE user_values_copy AS SELECT * FROM user_values;
DROP TABLE user_values;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- Partial indexes: every query of live users says `deleted_at IS NULL`, so
-- the planner can use them (and COUNT(*) scans the smallest one).
CREATE UNIQUE INDEX users_user_name_ci ON users (user_name_ci) WHERE deleted_at IS NULL;
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_display_name_ci ON users (display_name_ci);
CREATE INDEX users_last_modified ON users (last_modified);
CREATE INDEX users_created_id ON users (created, id) WHERE deleted_at IS NULL;
-- The purge: soft-deleted users by deletion time.
CREATE INDEX users_deleted_at ON users (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE user_values (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attr TEXT NOT NULL,
    idx INTEGER NOT NULL,
    value TEXT NULL,
    value_ci TEXT NULL,
    display_ci TEXT NULL,
    type_ci TEXT NULL,
    is_primary BOOLEAN NULL,
    formatted_ci TEXT NULL,
    street_address_ci TEXT NULL,
    locality_ci TEXT NULL,
    region_ci TEXT NULL,
    postal_code_ci TEXT NULL,
    country_ci TEXT NULL,
    PRIMARY KEY (user_id, attr, idx)
);
INSERT INTO user_values (user_id, attr, idx, value, value_ci, display_ci, type_ci,
    is_primary, formatted_ci, street_address_ci, locality_ci, region_ci,
    postal_code_ci, country_ci)
SELECT user_id, attr, idx, value, value_ci, display_ci, type_ci,
    is_primary, formatted_ci, street_address_ci, locality_ci, region_ci,
    postal_code_ci, country_ci
FROM user_values_copy;
DROP TABLE user_values_copy;
CREATE INDEX user_values_attr_value_ci ON user_values (attr, value_ci);
