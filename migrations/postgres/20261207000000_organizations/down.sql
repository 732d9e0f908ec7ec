-- Back to one directory: the default organization's rows stay, every
-- other organization's go.
DELETE FROM users WHERE org_id <> 1;
DELETE FROM user_values WHERE org_id <> 1;
DELETE FROM groups WHERE org_id <> 1;
DELETE FROM scim_tokens WHERE org_id <> 1;
DELETE FROM oauth_clients WHERE org_id <> 1;
DELETE FROM sync_events WHERE org_id <> 1;
DELETE FROM change_log WHERE org_id <> 1;
DELETE FROM provisioning_traffic WHERE org_id <> 1;
DELETE FROM sync_state WHERE id <> 1;
DELETE FROM runtime_settings WHERE id <> 1;
DELETE FROM saml_settings WHERE id <> 1;

DROP TABLE admin_organizations;
ALTER TABLE admins DROP COLUMN role;
ALTER TABLE admin_tokens DROP COLUMN org_id;

DROP INDEX scim_tokens_org;
DROP INDEX oauth_clients_org;
DROP INDEX sync_events_org_at;
DROP INDEX change_log_org;

DROP INDEX users_user_name_ci;
DROP INDEX users_external_id;
DROP INDEX users_display_name_ci;
DROP INDEX users_last_modified;
DROP INDEX users_created_id;
DROP INDEX user_values_attr_value_ci;
DROP INDEX groups_display_name_ci;
DROP INDEX groups_external_id;
DROP INDEX groups_last_modified;
DROP INDEX groups_created_id;

ALTER TABLE users DROP COLUMN org_id;
ALTER TABLE user_values DROP COLUMN org_id;
ALTER TABLE groups DROP COLUMN org_id;
ALTER TABLE scim_tokens DROP COLUMN org_id;
ALTER TABLE oauth_clients DROP COLUMN org_id;
ALTER TABLE sync_events DROP COLUMN org_id;
ALTER TABLE change_log DROP COLUMN org_id;
ALTER TABLE provisioning_traffic DROP COLUMN org_id;

CREATE UNIQUE INDEX users_user_name_ci ON users (md5(user_name_ci)) WHERE deleted_at IS NULL;
CREATE INDEX users_external_id ON users (md5(external_id));
CREATE INDEX users_display_name_ci ON users (md5(display_name_ci));
CREATE INDEX users_last_modified ON users (last_modified);
CREATE INDEX users_created_id ON users (created, id) WHERE deleted_at IS NULL;
CREATE INDEX user_values_attr_value_ci ON user_values (attr, md5(value_ci));
CREATE UNIQUE INDEX groups_display_name_ci ON groups (md5(display_name_ci));
CREATE INDEX groups_external_id ON groups (md5(external_id));
CREATE INDEX groups_last_modified ON groups (last_modified);
CREATE INDEX groups_created_id ON groups (created, id);

DROP TABLE organizations;
