//! Diesel table definitions, using only column types both backends share.

diesel::table! {
    /// Bearer tokens for the SCIM API.
    scim_tokens (id) {
        /// UUID text.
        id -> Text,
        /// A label chosen by the operator.
        name -> Text,
        /// The first characters of the secret, for display.
        prefix -> Text,
        /// SHA-256 of the secret, lowercase hex.
        secret_hash -> Text,
        /// Creation time (fixed UTC text form).
        created_at -> Text,
        /// Last successful authentication.
        last_used_at -> Nullable<Text>,
        /// Expiry, if any.
        expires_at -> Nullable<Text>,
        /// Revocation time, if revoked.
        revoked_at -> Nullable<Text>,
        /// Who created it (`admin:…`, `token:…`, `cli:…`); NULL when
        /// unknown.
        created_by -> Nullable<Text>,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// SCIM users.
    users (id) {
        /// UUID text.
        id -> Text,
        /// userName as given.
        user_name -> Text,
        /// userName lowercased: the unique key.
        user_name_ci -> Text,
        /// externalId (caseExact).
        external_id -> Nullable<Text>,
        /// displayName lowercased.
        display_name_ci -> Nullable<Text>,
        /// active.
        active -> Bool,
        /// The canonical attribute JSON.
        resource -> Text,
        /// The password hash, never returned (RFC 7643 §4.1.1).
        password_hash -> Nullable<Text>,
        /// Optimistic-concurrency version, also the ETag.
        version -> BigInt,
        /// meta.created.
        created -> Text,
        /// meta.lastModified.
        last_modified -> Text,
        /// displayName as given: the `display` of the user's memberships.
        display_name -> Nullable<Text>,
        /// When the user was soft-deleted (then invisible to the SCIM API
        /// until purged); NULL for a live user.
        deleted_at -> Nullable<Text>,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// The filter index of user attributes that are not columns of `users`.
    user_values (user_id, attr, idx) {
        /// The owning user.
        user_id -> Text,
        /// Canonical attribute path (`title`, `name.givenName`, `emails`, …).
        attr -> Text,
        /// Position in a multi-valued attribute, 0 for single-valued.
        idx -> Integer,
        /// The value as given.
        value -> Nullable<Text>,
        /// The comparison form of `value`.
        value_ci -> Nullable<Text>,
        /// `display`, lowercased.
        display_ci -> Nullable<Text>,
        /// `type`, lowercased.
        type_ci -> Nullable<Text>,
        /// `primary`.
        is_primary -> Nullable<Bool>,
        /// addresses.formatted, lowercased.
        formatted_ci -> Nullable<Text>,
        /// addresses.streetAddress, lowercased.
        street_address_ci -> Nullable<Text>,
        /// addresses.locality, lowercased.
        locality_ci -> Nullable<Text>,
        /// addresses.region, lowercased.
        region_ci -> Nullable<Text>,
        /// addresses.postalCode, lowercased.
        postal_code_ci -> Nullable<Text>,
        /// addresses.country, lowercased.
        country_ci -> Nullable<Text>,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// SCIM groups (RFC 7643 §4.2), without their members.
    groups (id) {
        /// UUID text.
        id -> Text,
        /// displayName as given.
        display_name -> Text,
        /// displayName lowercased: the unique key.
        display_name_ci -> Text,
        /// externalId (caseExact).
        external_id -> Nullable<Text>,
        /// The canonical attribute JSON, without `members`.
        resource -> Text,
        /// Optimistic-concurrency version, also the ETag.
        version -> BigInt,
        /// meta.created.
        created -> Text,
        /// meta.lastModified.
        last_modified -> Text,
        /// The organization (`organizations.id`).
        org_id -> Integer,
    }
}

diesel::table! {
    /// One row per (group, member).
    group_members (group_id, member_id) {
        /// The group.
        group_id -> Text,
        /// The member's id: a User or a Group.
        member_id -> Text,
        /// `User` or `Group`.
        member_type -> Text,
    }
}

diesel::table! {
    /// Custom schema extensions of the User (`scim::extensions`).
    schema_extensions (id) {
        /// The extension URN.
        id -> Text,
        /// Its definition (`scim_core::extensions::ExtensionDef`), JSON.
        definition -> Text,
        /// When it was defined.
        created_at -> Text,
        /// Who defined it (`admin:…`, `token:…`, `cli:…`).
        created_by -> Text,
        /// When its definition last changed.
        updated_at -> Text,
    }
}

diesel::joinable!(user_values -> users (user_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(users, user_values, groups, group_members);
