-- Organizations (docs/ORGANIZATIONS.md): one scimd serves many customer
-- directories. Every directory-scoped row carries the id of its
-- organization; the default organization (id 1, slug `default`) holds
-- everything a database had before, served at the unchanged `/scim/v2`
-- with the same tokens. The one-row tables of the SCIM gate (`sync_state`,
-- `runtime_settings`, `saml_settings`) become one row per organization,
-- keyed by the organization's id, so their existing row (id 1) already
-- belongs to the default organization.
CREATE TABLE organizations (
    id SERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    -- Lower-cased; a request whose Host is this name reaches the
    -- organization at the plain `/scim/v2`.
    host TEXT NULL UNIQUE,
    suspended_at TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO organizations (id, slug, name, created_at, updated_at)
VALUES (1, 'default', 'Default organization',
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
SELECT setval(pg_get_serial_sequence('organizations', 'id'), 1);

-- No foreign keys on the added columns, as on SQLite (which refuses them
-- on ALTER TABLE): deleting an organization deletes its rows itself
-- (scim-store admin/organizations.rs).
ALTER TABLE users ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE user_values ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE groups ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE scim_tokens ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE oauth_clients ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sync_events ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE change_log ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE provisioning_traffic ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;

-- Every index that serves a lookup or a filter leads with the
-- organization (md5() of client-filled values, as in
-- 20261206000000_bounded_index_keys), and uniqueness is per organization.
DROP INDEX users_user_name_ci;
CREATE UNIQUE INDEX users_user_name_ci ON users (org_id, md5(user_name_ci)) WHERE deleted_at IS NULL;
DROP INDEX users_external_id;
CREATE INDEX users_external_id ON users (org_id, md5(external_id));
DROP INDEX users_display_name_ci;
CREATE INDEX users_display_name_ci ON users (org_id, md5(display_name_ci));
DROP INDEX users_last_modified;
CREATE INDEX users_last_modified ON users (org_id, last_modified);
DROP INDEX users_created_id;
CREATE INDEX users_created_id ON users (org_id, created, id) WHERE deleted_at IS NULL;
DROP INDEX user_values_attr_value_ci;
CREATE INDEX user_values_attr_value_ci ON user_values (org_id, attr, md5(value_ci));
DROP INDEX groups_display_name_ci;
CREATE UNIQUE INDEX groups_display_name_ci ON groups (org_id, md5(display_name_ci));
DROP INDEX groups_external_id;
CREATE INDEX groups_external_id ON groups (org_id, md5(external_id));
DROP INDEX groups_last_modified;
CREATE INDEX groups_last_modified ON groups (org_id, last_modified);
DROP INDEX groups_created_id;
CREATE INDEX groups_created_id ON groups (org_id, created, id);

CREATE INDEX scim_tokens_org ON scim_tokens (org_id);
CREATE INDEX oauth_clients_org ON oauth_clients (org_id);
CREATE INDEX sync_events_org_at ON sync_events (org_id, at);
CREATE INDEX change_log_org ON change_log (org_id, position);

-- Administrators: an instance administrator manages every organization
-- and the organizations themselves; an organization administrator sees
-- and manages only the organizations listed for it in admin_organizations.
-- Every existing administrator is an instance administrator.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'instance'
    CHECK (role IN ('instance', 'organization'));
CREATE TABLE admin_organizations (
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    PRIMARY KEY (admin_id, org_id)
);
CREATE INDEX admin_organizations_org ON admin_organizations (org_id);
-- An admin API token acts within one organization (NULL: every
-- organization, an instance administrator's token).
ALTER TABLE admin_tokens ADD COLUMN org_id INTEGER NULL;
