-- The organization a console session shows and changes (the console's
-- organization switcher, docs/ORGANIZATIONS.md). NULL: the administrator's
-- first organization (the default one for an instance administrator).
-- No REFERENCES: a session naming a deleted organization falls back to
-- the first one it may act on.
ALTER TABLE admin_sessions ADD COLUMN org_id INTEGER NULL;
