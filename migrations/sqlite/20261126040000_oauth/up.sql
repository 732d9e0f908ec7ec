-- The OAuth 2.0 authorization server (issue 5): clients registered by an
-- administrator for an identity provider, grants (one per approval on the
-- consent page), single-use authorization codes, and access and refresh
-- tokens. Every secret (client secret, code, token) is stored only as its
-- SHA-256 (hex). Timestamps are TEXT in the fixed UTC form of
-- scim_core::datetime.

-- Clients: `id` is the public client_id.
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    secret_prefix TEXT NOT NULL,
    -- JSON array of the exact redirect URIs.
    redirect_uris TEXT NOT NULL,
    -- Space-separated scopes the client may ask for.
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    secret_rotated_at TEXT NULL
);

-- One grant per approval: which client, which administrator, when, last
-- use, and revocation (by an administrator, RFC 7009, or reuse detection).
CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    admin_id TEXT NOT NULL,
    admin_username TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT NULL,
    revoked_at TEXT NULL,
    revoked_reason TEXT NULL
);
CREATE INDEX oauth_grants_client_id ON oauth_grants (client_id);

-- Authorization codes (RFC 6749 §4.1.2): single use, short-lived, bound
-- to the client, the redirect URI and the PKCE challenge.
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT NULL
);
CREATE INDEX oauth_codes_grant_id ON oauth_codes (grant_id);

-- Access and refresh tokens (`kind`); a refresh token's used_at marks its
-- rotation, so presenting it again is detected as reuse.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    grant_id TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT NULL,
    revoked_at TEXT NULL
);
CREATE INDEX oauth_tokens_grant_id ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at);
