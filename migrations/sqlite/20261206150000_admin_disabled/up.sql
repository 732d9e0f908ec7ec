-- When an administrator was disabled (NULL: enabled). A disabled
-- administrator cannot sign in; its sessions are deleted when it is
-- disabled, and sessions of a disabled administrator are never accepted.
ALTER TABLE admins ADD COLUMN disabled_at TEXT NULL;
