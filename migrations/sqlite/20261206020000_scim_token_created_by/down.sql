ALTER TABLE scim_tokens DROP COLUMN created_by;
