-- scimd schema, SQLite flavour. Keep column types to those PostgreSQL shares
-- (TEXT, BIGINT/INTEGER, BOOLEAN): ids are TEXT UUIDs and timestamps TEXT in
-- the fixed UTC form of scim_core::datetime, so text order is time order.

-- Bearer tokens for the SCIM API; only the SHA-256 of the secret is kept.
CREATE TABLE scim_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT NULL,
    expires_at TEXT NULL,
    revoked_at TEXT NULL
);

-- Users (RFC 7643 §4.1). `resource` is the canonical attribute JSON and the
-- source of truth for reads; the other columns are derived on every write.
-- The unique index on user_name_ci (userName lowercased) makes
-- case-insensitive userName uniqueness (RFC 7643 §4.1.1) race-proof.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    user_name TEXT NOT NULL,
    user_name_ci TEXT NOT NULL UNIQUE,
    external_id TEXT NULL,
    display_name_ci TEXT NULL,
    active BOOLEAN NOT NULL,
    resource TEXT NOT NULL,
    password_hash TEXT NULL,
    version BIGINT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL
);
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_display_name_ci ON users (display_name_ci);
CREATE INDEX users_last_modified ON users (last_modified);
CREATE INDEX users_created_id ON users (created, id);

-- The filter index for every attribute not on `users`: one row per
-- single-valued leaf (idx 0) and one per element of a multi-valued attribute.
-- `value_ci` is the comparison form of `value`: lowercased, unless the
-- attribute is caseExact (then equal to `value`), so one index serves both.
CREATE TABLE user_values (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attr TEXT NOT NULL,
    idx INTEGER NOT NULL,
    value TEXT NULL,
    value_ci TEXT NULL,
    display_ci TEXT NULL,
    type_ci TEXT NULL,
    is_primary BOOLEAN NULL,
    formatted_ci TEXT NULL,
    street_address_ci TEXT NULL,
    locality_ci TEXT NULL,
    region_ci TEXT NULL,
    postal_code_ci TEXT NULL,
    country_ci TEXT NULL,
    PRIMARY KEY (user_id, attr, idx)
);
CREATE INDEX user_values_attr_value_ci ON user_values (attr, value_ci);
