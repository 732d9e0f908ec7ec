-- The admin side (issue 4): User Synchronization state and its change log,
-- SAML settings, run-time settings, admin accounts, sessions, API tokens,
-- setup codes and login attempts. Only TEXT, BIGINT, INTEGER and BOOLEAN
-- columns; timestamps are TEXT in the fixed UTC form of scim_core::datetime.

-- One row (id = 1): whether the SCIM API accepts requests. It is read on
-- every SCIM request, on the connection the handler already holds, so a
-- change takes effect on the next request of every replica. A fresh (or
-- upgraded) installation starts disabled: an administrator enables it.
CREATE TABLE sync_state (
    id INTEGER PRIMARY KEY NOT NULL,
    enabled BOOLEAN NOT NULL,
    enabled_at TEXT NULL,
    enabled_by TEXT NULL,
    accepted_cautions TEXT NOT NULL,
    changed_at TEXT NULL,
    changed_by TEXT NULL
);
INSERT INTO sync_state (id, enabled, accepted_cautions) VALUES (1, FALSE, '');

-- Who enabled or disabled synchronization, when, and with what.
CREATE TABLE sync_events (
    id TEXT PRIMARY KEY NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX sync_events_at ON sync_events (at);

-- One row (id = 1) once configured: the identity provider's SAML sign-in.
CREATE TABLE saml_settings (
    id INTEGER PRIMARY KEY NOT NULL,
    entity_id TEXT NOT NULL,
    sso_url TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- One row (id = 1): settings changed at run time, versioned for
-- ETag / If-Match (RFC 7232) so two admins cannot overwrite each other.
CREATE TABLE runtime_settings (
    id INTEGER PRIMARY KEY NOT NULL,
    deprovisioning TEXT NOT NULL,
    soft_delete_retention_days INTEGER NOT NULL,
    default_page_size INTEGER NOT NULL,
    max_page_size INTEGER NOT NULL,
    version BIGINT NOT NULL,
    updated_at TEXT NULL,
    updated_by TEXT NULL
);
INSERT INTO runtime_settings
    (id, deprovisioning, soft_delete_retention_days, default_page_size, max_page_size, version)
    VALUES (1, 'hard', 30, 100, 1000, 1);

-- Administrators; username_ci (lower-cased) is the unique key.
CREATE TABLE admins (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    username_ci TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_login_at TEXT NULL
);

-- Console sessions: only the SHA-256 of the session id is stored.
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    admin_id TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX admin_sessions_admin_id ON admin_sessions (admin_id);
CREATE INDEX admin_sessions_expires_at ON admin_sessions (expires_at);

-- Bearer tokens for the admin API, separate from scim_tokens so that
-- neither kind ever opens the other API.
CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    last_used_at TEXT NULL,
    expires_at TEXT NULL,
    revoked_at TEXT NULL
);

-- One-time codes that create the first administrator (SHA-256 only).
CREATE TABLE admin_setup_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Login attempts, for rate limiting per account and per address.
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    username_ci TEXT NOT NULL,
    address TEXT NOT NULL,
    at TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_username_at ON login_attempts (username_ci, at);
CREATE INDEX login_attempts_address_at ON login_attempts (address, at);
