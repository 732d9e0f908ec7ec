-- Organizations (docs/ORGANIZATIONS.md): one scimd serves many customer
-- directories. Every directory-scoped row carries the id of its
-- organization; the default organization (id 1, slug `default`) holds
-- everything a database had before, served at the unchanged `/scim/v2`
-- with the same tokens. The one-row tables of the SCIM gate (`sync_state`,
-- `runtime_settings`, `saml_settings`) become one row per organization,
-- keyed by the organization's id, so their existing row (id 1) already
-- belongs to the default organization.
CREATE TABLE organizations (
    id INTEGER PRIMARY KEY NOT NULL,
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
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- No REFERENCES on the added columns: SQLite refuses a foreign key with a
-- non-NULL default on ALTER TABLE, and deleting an organization deletes
-- its rows itself (scim-store admin/organizations.rs), on both backends.
ALTER TABLE users ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE user_values ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE groups ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE scim_tokens ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE oauth_clients ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sync_events ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE change_log ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
ALTER TABLE provisioning_traffic ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;

-- Every index that serves a lookup or a filter leads with the
-- organization, so a large organization beside many small ones keeps its
-- figures, and uniqueness (userName, group displayName) is per
-- organization.
DROP INDEX users_user_name_ci;
CREATE UNIQUE INDEX users_user_name_ci ON users (org_id, user_name_ci) WHERE deleted_at IS NULL;
DROP INDEX users_external_id;
CREATE INDEX users_external_id ON users (org_id, external_id);
DROP INDEX users_display_name_ci;
CREATE INDEX users_display_name_ci ON users (org_id, display_name_ci);
DROP INDEX users_last_modified;
CREATE INDEX users_last_modified ON users (org_id, last_modified);
DROP INDEX users_created_id;
CREATE INDEX users_created_id ON users (org_id, created, id) WHERE deleted_at IS NULL;
DROP INDEX user_values_attr_value_ci;
CREATE INDEX user_values_attr_value_ci ON user_values (org_id, attr, value_ci);

-- groups.display_name_ci was declared UNIQUE in its table: that index
-- cannot be dropped, so the table is rebuilt with the key per organization.
CREATE TABLE groups_new (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    display_name_ci TEXT NOT NULL,
    external_id TEXT NULL,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    org_id INTEGER NOT NULL DEFAULT 1
);
INSERT INTO groups_new (id, display_name, display_name_ci, external_id, resource, version,
                        created, last_modified, org_id)
SELECT id, display_name, display_name_ci, external_id, resource, version,
       created, last_modified, org_id FROM groups;
-- group_members references groups(id) ON DELETE CASCADE: keep its rows
-- while the old table goes (foreign keys are checked per statement).
CREATE TABLE group_members_copy AS SELECT * FROM group_members;
DROP TABLE group_members;
DROP TABLE groups;
ALTER TABLE groups_new RENAME TO groups;
CREATE UNIQUE INDEX groups_display_name_ci ON groups (org_id, display_name_ci);
CREATE INDEX groups_external_id ON groups (org_id, external_id);
CREATE INDEX groups_last_modified ON groups (org_id, last_modified);
CREATE INDEX groups_created_id ON groups (org_id, created, id);
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
INSERT INTO group_members (group_id, member_id, member_type)
SELECT group_id, member_id, member_type FROM group_members_copy;
DROP TABLE group_members_copy;
CREATE INDEX group_members_member_id ON group_members (member_id);

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
