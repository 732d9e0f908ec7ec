//! Diesel table definition of the change log (migration
//! `20261206100000_change_log`).

diesel::table! {
    /// One row for every committed change.
    change_log (position) {
        /// The cursor: increasing in commit order.
        position -> BigInt,
        /// When (scim_core::datetime form).
        at -> Text,
        /// What happened ([`crate::changes::Event`]).
        event -> Text,
        /// `User`, `Group`, or the admin resource changed.
        resource_type -> Text,
        /// The resource's id, when it has one.
        resource_id -> Nullable<Text>,
        /// The resource's version after the change.
        resource_version -> Nullable<BigInt>,
        /// Who ([`crate::changes::ActorKind`]).
        actor_kind -> Text,
        /// The actor's id (token id, client id, administrator id…).
        actor_id -> Nullable<Text>,
        /// The actor's name at the time.
        actor_name -> Nullable<Text>,
        /// The request's id.
        request_id -> Nullable<Text>,
        /// The client's address.
        client_address -> Nullable<Text>,
        /// A JSON object: what changed (attribute paths, members…).
        detail -> Text,
        /// JSON: the `data` of the change's full event.
        data -> Nullable<Text>,
        /// The organization (`organizations.id`).
        org_id -> Integer,
        /// The resource's `externalId` (migration
        /// `20261209000000_change_log_external_id`).
        external_id -> Nullable<Text>,
    }
}
