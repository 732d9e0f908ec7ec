-- Event streams (docs/EVENTS.md): each delivers the SCIM changes of the
-- change log to one application as signed SETs (RFC 8417, RFC 9967),
-- pushed (RFC 8935) or polled (RFC 8936). `cursor_position` is the last
-- change_log position the stream is done with (delivered, acknowledged or
-- not selected); everything after it is still to deliver.
CREATE TABLE event_streams (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    delivery TEXT NOT NULL,
    -- JSON: endpoint_url, audience, issuer, event_types, resource_types,
    -- mode, alg (scim-store events/streams.rs).
    settings TEXT NOT NULL,
    -- The Authorization header value sent to a push receiver: a secret,
    -- never returned after creation.
    receiver_authorization TEXT NULL,
    -- SHA-256 of the receiver token (polling, the JWKS).
    receiver_token_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    cursor_position BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    last_error TEXT NULL,
    last_error_at TEXT NULL,
    next_attempt_at TEXT NULL,
    delivered_at TEXT NULL,
    -- The replica delivering it (push), until `lease_until`.
    lease_owner TEXT NULL,
    lease_until TEXT NULL,
    created_at TEXT NOT NULL
);
-- A stream's signing keys: the newest unretired one signs; retired ones
-- stay in the JWKS until removed (rotation).
CREATE TABLE event_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    stream_id TEXT NOT NULL REFERENCES event_streams (id) ON DELETE CASCADE,
    alg TEXT NOT NULL,
    -- Base64 PKCS#8 private key (ES256, EdDSA) or HMAC secret (HS256).
    secret TEXT NOT NULL,
    public_jwk TEXT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT NULL
);
CREATE INDEX event_keys_stream ON event_keys (stream_id);
-- Poll streams: positions after the cursor acknowledged out of order
-- (RFC 8936 §2.4); the cursor moves over them once the gap before closes.
CREATE TABLE event_acks (
    stream_id TEXT NOT NULL REFERENCES event_streams (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    PRIMARY KEY (stream_id, position)
);
