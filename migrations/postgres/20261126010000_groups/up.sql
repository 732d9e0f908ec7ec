-- Groups (RFC 7643 §4.2), PostgreSQL flavour. `resource` is the canonical
-- attribute JSON WITHOUT `members`: membership lives in `group_members`, one
-- row per member, so a membership change touches one row (plus the group's
-- version), never a list as long as the group.

-- display_name_ci is displayName lowercased (Rust `to_lowercase`): Entra ID
-- requires displayName to be unique case-insensitively, and the unique index
-- makes that race-proof.
CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    display_name_ci TEXT NOT NULL UNIQUE,
    external_id TEXT NULL,
    resource TEXT NOT NULL,
    version BIGINT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE INDEX groups_external_id ON groups (external_id);
CREATE INDEX groups_last_modified ON groups (last_modified);
CREATE INDEX groups_created_id ON groups (created, id);

-- member_id is a User or a Group id, so it has no foreign key; the store
-- removes a deleted resource's memberships itself. The primary key serves
-- "members of a group in id order", the member_id index "groups of a member".
CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member_id ON group_members (member_id);

-- The raw displayName of a User, for the `display` of its memberships
-- (RFC 7643 §4.2 members.display), read by a join instead of parsing JSON.
ALTER TABLE users ADD COLUMN display_name TEXT NULL;
UPDATE users
SET display_name = resource::json->>'displayName'
WHERE json_typeof(resource::json->'displayName') = 'string'
  AND resource::json->>'displayName' <> '';
