-- The IDs of SAML assertions that signed an administrator in to the
-- console, kept until the assertion expires, so that a captured assertion
-- cannot sign in a second time (SAML 2.0 Profiles §4.1.4.5: the service
-- provider keeps a bearer assertion's ID for as long as it is valid). In
-- the database, so every replica refuses the same replay.
CREATE TABLE saml_assertions (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX saml_assertions_expires_at ON saml_assertions (expires_at);
