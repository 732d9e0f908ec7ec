//! Diesel table definitions of the OAuth 2.0 authorization server
//! (migration `20261126040000_oauth`). Only column types both backends
//! share.

diesel::table! {
    /// Clients registered by an administrator (one per identity provider).
    oauth_clients (id) {
        /// The public client_id.
        id -> Text,
        /// A label, shown on the consent page.
        name -> Text,
        /// SHA-256 of the client secret, hex.
        secret_hash -> Text,
        /// The first characters of the secret, for display.
        secret_prefix -> Text,
        /// JSON array of the exact redirect URIs.
        redirect_uris -> Text,
        /// Space-separated scopes the client may ask for.
        scopes -> Text,
        /// Creation time.
        created_at -> Text,
        /// Who registered it.
        created_by -> Text,
        /// Last secret rotation.
        secret_rotated_at -> Nullable<Text>,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// One approval on the consent page.
    oauth_grants (id) {
        /// UUID text.
        id -> Text,
        /// The client.
        client_id -> Text,
        /// The approving administrator's id.
        admin_id -> Text,
        /// The approving administrator's username (kept if the account goes).
        admin_username -> Text,
        /// The granted scope.
        scope -> Text,
        /// When it was approved.
        created_at -> Text,
        /// Last use of one of its tokens.
        last_used_at -> Nullable<Text>,
        /// Revocation time.
        revoked_at -> Nullable<Text>,
        /// Why it was revoked.
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// Authorization codes.
    oauth_codes (code_hash) {
        /// SHA-256 of the code, hex.
        code_hash -> Text,
        /// The grant it belongs to.
        grant_id -> Text,
        /// The client it was issued to.
        client_id -> Text,
        /// The redirect URI it was issued for.
        redirect_uri -> Text,
        /// The PKCE S256 challenge, if any.
        code_challenge -> Nullable<Text>,
        /// Creation time.
        created_at -> Text,
        /// Expiry.
        expires_at -> Text,
        /// When it was exchanged.
        used_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Access and refresh tokens.
    oauth_tokens (token_hash) {
        /// SHA-256 of the token, hex.
        token_hash -> Text,
        /// The grant it belongs to.
        grant_id -> Text,
        /// `access` or `refresh`.
        kind -> Text,
        /// Creation time.
        created_at -> Text,
        /// Expiry.
        expires_at -> Text,
        /// Refresh tokens: when it was rotated.
        used_at -> Nullable<Text>,
        /// Revocation time (single token, RFC 7009).
        revoked_at -> Nullable<Text>,
    }
}

diesel::joinable!(oauth_grants -> oauth_clients (client_id));
diesel::joinable!(oauth_tokens -> oauth_grants (grant_id));
diesel::joinable!(oauth_codes -> oauth_grants (grant_id));
diesel::allow_tables_to_appear_in_same_query!(
    oauth_clients,
    oauth_grants,
    oauth_codes,
    oauth_tokens
);
