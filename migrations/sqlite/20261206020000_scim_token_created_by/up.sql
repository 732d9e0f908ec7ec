-- Who created each SCIM token: `admin:<name>` (console), `token:<name>`
-- (admin API token), `cli:<login>` (scimd token create). NULL for tokens
-- created before it was recorded.
ALTER TABLE scim_tokens ADD COLUMN created_by TEXT NULL;
