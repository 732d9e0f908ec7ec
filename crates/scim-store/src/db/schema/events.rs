//! Diesel table definitions of the event streams (migrations
//! `20261206113000_event_streams`, `20261208000005_event_stream_org`).

diesel::table! {
    /// A stream of SCIM events to one application (docs/EVENTS.md).
    event_streams (id) {
        /// UUID text.
        id -> Text,
        /// The operator's label.
        name -> Text,
        /// `push` (RFC 8935) or `poll` (RFC 8936).
        delivery -> Text,
        /// JSON: the rest of the stream's settings (endpoint URL,
        /// audience, issuer, selection, mode, algorithm).
        settings -> Text,
        /// The Authorization header value sent to the receiver (a secret).
        receiver_authorization -> Nullable<Text>,
        /// SHA-256 (hex) of the receiver token.
        receiver_token_hash -> Text,
        /// `active` or `paused`.
        state -> Text,
        /// The last change_log position the stream is done with.
        cursor_position -> BigInt,
        /// Consecutive failed deliveries.
        failures -> Integer,
        /// The last delivery error.
        last_error -> Nullable<Text>,
        /// When it happened.
        last_error_at -> Nullable<Text>,
        /// No delivery before this time (backoff).
        next_attempt_at -> Nullable<Text>,
        /// The last successful delivery.
        delivered_at -> Nullable<Text>,
        /// The replica delivering it.
        lease_owner -> Nullable<Text>,
        /// Until when.
        lease_until -> Nullable<Text>,
        /// Creation time.
        created_at -> Text,
        /// The organization whose changes it delivers.
        org_id -> Integer,
    }
}

diesel::table! {
    /// The signing keys of the streams.
    event_keys (kid) {
        /// The key id (JWS `kid`).
        kid -> Text,
        /// The stream.
        stream_id -> Text,
        /// `ES256`, `EdDSA` or `HS256`.
        alg -> Text,
        /// Base64 PKCS#8 (ES256, EdDSA) or the HMAC secret (HS256).
        secret -> Text,
        /// The public JWK (JSON text); none for HS256.
        public_jwk -> Nullable<Text>,
        /// Creation time.
        created_at -> Text,
        /// When it stopped signing.
        retired_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Poll acknowledgements after a stream's cursor.
    event_acks (stream_id, position) {
        /// The stream.
        stream_id -> Text,
        /// The acknowledged change_log position.
        position -> BigInt,
    }
}
