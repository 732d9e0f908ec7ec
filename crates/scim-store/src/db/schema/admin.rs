//! Diesel table definitions of the admin side (migration
//! `20261126020000_admin`), kept apart from `scim.rs` so the SCIM tables
//! and the admin tables evolve independently. Only column types both
//! backends share.

diesel::table! {
    /// One row (id = 1): whether the SCIM API accepts requests.
    sync_state (id) {
        /// Always 1.
        id -> Integer,
        /// Whether User Synchronization is enabled.
        enabled -> Bool,
        /// When it was last enabled.
        enabled_at -> Nullable<Text>,
        /// Who last enabled it.
        enabled_by -> Nullable<Text>,
        /// Comma-separated caution ids accepted when it was enabled.
        accepted_cautions -> Text,
        /// When it was last changed (enabled or disabled).
        changed_at -> Nullable<Text>,
        /// Who last changed it.
        changed_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// The change log of User Synchronization.
    sync_events (id) {
        /// UUID text.
        id -> Text,
        /// When.
        at -> Text,
        /// Who (`admin:NAME`, `token:NAME`, `cli:USER`).
        actor -> Text,
        /// `enabled` or `disabled`.
        action -> Text,
        /// What was accepted or why.
        detail -> Text,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// IDs of SAML assertions that signed in, until they expire (replay
    /// protection; migration `20261206170000_saml_assertions`).
    saml_assertions (id) {
        /// The assertion's `ID`.
        id -> Text,
        /// When the assertion stops being valid (stored form).
        expires_at -> Text,
    }
}

diesel::table! {
    /// SAML AuthnRequests sent and not yet answered, each bound to a
    /// browser (migration `20261207020000_saml_requests`).
    saml_requests (id) {
        /// The request's `ID`, which the response's `InResponseTo` names.
        id -> Text,
        /// SHA-256 (hex) of the secret in the browser's cookie.
        browser_hash -> Text,
        /// When it was sent (stored form).
        created_at -> Text,
        /// When it stops being answerable (stored form).
        expires_at -> Text,
    }
}

diesel::table! {
    /// One row (id = 1) once configured: SAML sign-in of the identity provider.
    saml_settings (id) {
        /// Always 1.
        id -> Integer,
        /// The IdP's entity ID.
        entity_id -> Text,
        /// The IdP's single sign-on URL.
        sso_url -> Text,
        /// The IdP's signing certificate, PEM.
        certificate_pem -> Text,
        /// Last change.
        updated_at -> Text,
        /// Who made the last change.
        updated_by -> Text,
    }
}

diesel::table! {
    /// One row (id = 1): settings changed at run time.
    runtime_settings (id) {
        /// Always 1.
        id -> Integer,
        /// `hard` or `soft`.
        deprovisioning -> Text,
        /// Days a soft-deleted user is kept before it is purged.
        soft_delete_retention_days -> Integer,
        /// Page size when a list request gives no `count`.
        default_page_size -> Integer,
        /// Largest page size.
        max_page_size -> Integer,
        /// Optimistic-concurrency version, also the ETag.
        version -> BigInt,
        /// Last change.
        updated_at -> Nullable<Text>,
        /// Who made the last change.
        updated_by -> Nullable<Text>,
        /// Days the change log keeps a row before it is purged.
        change_log_retention_days -> Integer,
        /// Failure ratio (percent) of a credential's recent SCIM requests
        /// that raises the quarantine warning.
        health_failure_percent -> Integer,
        /// Minutes without a SCIM request (synchronization enabled) that
        /// raise the silence warning.
        health_silence_minutes -> Integer,
        /// How many of a credential's newest requests make its recent
        /// window (migration `20261207010000_health_window`).
        health_window_requests -> Integer,
        /// The recent window covers at least these last minutes.
        health_window_minutes -> Integer,
    }
}

diesel::table! {
    /// Administrators of scimd.
    admins (id) {
        /// UUID text.
        id -> Text,
        /// As given.
        username -> Text,
        /// Lower-cased: the unique key.
        username_ci -> Text,
        /// Argon2id PHC string.
        password_hash -> Text,
        /// Creation time.
        created_at -> Text,
        /// Last successful login.
        last_login_at -> Nullable<Text>,
        /// When it was disabled (NULL: enabled).
        disabled_at -> Nullable<Text>,
        /// `instance` or `organization` (docs/ORGANIZATIONS.md).
        role -> Text,
    }
}

diesel::table! {
    /// Console sessions.
    admin_sessions (id_hash) {
        /// SHA-256 of the session id, hex.
        id_hash -> Text,
        /// The administrator.
        admin_id -> Text,
        /// The CSRF token required on state-changing requests.
        csrf_token -> Text,
        /// Creation time.
        created_at -> Text,
        /// Expiry.
        expires_at -> Text,
        /// The organization the console shows (NULL: the first one the
        /// administrator may act on).
        org_id -> Nullable<Integer>,
    }
}

diesel::table! {
    /// Bearer tokens of the admin API.
    admin_tokens (id) {
        /// UUID text.
        id -> Text,
        /// A label.
        name -> Text,
        /// The first characters of the secret, for display.
        prefix -> Text,
        /// SHA-256 of the secret, hex.
        secret_hash -> Text,
        /// Creation time.
        created_at -> Text,
        /// Who created it.
        created_by -> Text,
        /// Last successful authentication.
        last_used_at -> Nullable<Text>,
        /// Expiry, if any.
        expires_at -> Nullable<Text>,
        /// Revocation time, if revoked.
        revoked_at -> Nullable<Text>,
        /// The organization it acts within (NULL: every organization).
        org_id -> Nullable<Integer>,
    }
}

diesel::table! {
    /// One-time codes that create the first administrator.
    admin_setup_codes (code_hash) {
        /// SHA-256 of the code, hex.
        code_hash -> Text,
        /// Creation time.
        created_at -> Text,
        /// Expiry.
        expires_at -> Text,
    }
}

diesel::table! {
    /// Attempts at a credential (an administrator sign-in, the setup code,
    /// an OAuth client secret), counted before the secret is checked and
    /// deleted when it succeeds: every row is a failure or an attempt in
    /// progress.
    login_attempts (id) {
        /// UUID text.
        id -> Text,
        /// The credential tried (`admin:NAME` lower-cased, `setup`,
        /// `oauth-client:ID`).
        username_ci -> Text,
        /// The client address (`oauth:ADDRESS` for OAuth clients).
        address -> Text,
        /// When.
        at -> Text,
        /// False: a failure (or an attempt not yet decided). True: the
        /// credential's last success from the address (one row per pair),
        /// which lets it past the address cap.
        succeeded -> Bool,
    }
}

diesel::table! {
    /// Each replica's record of one credential's SCIM traffic
    /// (`crate::admin::health`), flushed periodically and merged on read.
    provisioning_traffic (replica_id, credential_kind, credential_id) {
        /// The process that recorded it (random at startup).
        replica_id -> Text,
        /// `scim_token`, `oauth_client` or `unknown`.
        credential_kind -> Text,
        /// The token's id or the OAuth client's id (empty for `unknown`).
        credential_id -> Text,
        /// The token's or the client's name, when known.
        credential_name -> Nullable<Text>,
        /// The newest request of the row.
        last_request_at -> Text,
        /// The windows, cycles and last failures, JSON.
        state -> Text,
        /// When the replica last flushed it.
        updated_at -> Text,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::joinable!(admin_sessions -> admins (admin_id));
diesel::allow_tables_to_appear_in_same_query!(admins, admin_sessions);
// The SCIM API's per-request gate reads both one-row tables in one query.
diesel::allow_tables_to_appear_in_same_query!(sync_state, runtime_settings);

diesel::table! {
    /// The organizations (docs/ORGANIZATIONS.md).
    organizations (id) {
        /// The id every directory-scoped row carries in `org_id`.
        id -> Integer,
        /// The URL name: `/scim/v2/o/{slug}`.
        slug -> Text,
        /// The display name.
        name -> Text,
        /// A host name (lower-cased) that reaches it at the plain base path.
        host -> Nullable<Text>,
        /// When it was suspended (NULL: active).
        suspended_at -> Nullable<Text>,
        /// Creation time.
        created_at -> Text,
        /// Last change.
        updated_at -> Text,
    }
}

diesel::table! {
    /// The organizations an organization administrator manages.
    admin_organizations (admin_id, org_id) {
        /// The administrator.
        admin_id -> Text,
        /// The organization.
        org_id -> Integer,
    }
}
