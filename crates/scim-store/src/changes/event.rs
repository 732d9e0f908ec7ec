//! What a change did.

use serde::{Deserialize, Serialize};

macro_rules! events {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// What a row of the change log records. The stored form
        /// ([`Event::as_str`]) is `resource.verb`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Event {
            $(#[doc = $doc] #[serde(rename = $name)] $variant,)*
        }

        impl Event {
            /// Every event, in declaration order.
            pub const ALL: &'static [Event] = &[$(Event::$variant,)*];

            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Event::$variant => $name,)*
                }
            }
        }
    };
}

events! {
    UserCreated => "user.created", "A User was created (POST).";
    UserReplaced => "user.replaced", "A User was replaced (PUT).";
    UserPatched => "user.patched", "A User was modified (PATCH); `detail.paths` names the attributes.";
    UserActivated => "user.activated", "A User's `active` went from false to true.";
    UserSuspended => "user.suspended", "A User's `active` went from true to false.";
    UserDeleted => "user.deleted", "A User was deleted (hard delete: the row is gone).";
    UserSoftDeleted => "user.soft_deleted", "A User was deleted, kept until the purge (soft delete).";
    UserPurged => "user.purged", "A soft-deleted User was removed by the retention purge.";
    GroupCreated => "group.created", "A Group was created.";
    GroupReplaced => "group.replaced", "A Group was replaced (PUT).";
    GroupPatched => "group.patched", "A Group's attributes were modified (PATCH), e.g. renamed.";
    GroupDeleted => "group.deleted", "A Group was deleted.";
    MembersAdded => "group.members_added", "Members were added to a Group; `detail.members` lists them.";
    MembersRemoved => "group.members_removed", "Members were removed from a Group; `detail.members` lists them.";
    SyncEnabled => "sync.enabled", "User Synchronization was enabled.";
    SyncDisabled => "sync.disabled", "User Synchronization was disabled.";
    SamlChanged => "saml.changed", "The SAML settings changed.";
    SettingsChanged => "settings.changed", "The run-time settings changed.";
    ScimTokenCreated => "scim_token.created", "A SCIM token was created.";
    ScimTokenRevoked => "scim_token.revoked", "A SCIM token was revoked.";
    AdminTokenCreated => "admin_token.created", "An admin API token was created.";
    AdminTokenRevoked => "admin_token.revoked", "An admin API token was revoked.";
    OauthClientCreated => "oauth_client.created", "An OAuth client was registered.";
    OauthClientChanged => "oauth_client.changed", "An OAuth client changed (e.g. its secret was rotated).";
    OauthClientDeleted => "oauth_client.deleted", "An OAuth client was deleted.";
    OauthGrantCreated => "oauth_grant.created", "An OAuth grant was authorized.";
    OauthGrantRevoked => "oauth_grant.revoked", "An OAuth grant was revoked.";
    AdminCreated => "admin.created", "An administrator was created.";
    AdminChanged => "admin.changed", "An administrator changed (password, disabled, unlocked).";
    AdminDeleted => "admin.deleted", "An administrator was deleted.";
    AdminSignedIn => "admin.signed_in", "An administrator signed in.";
    AdminSignInFailed => "admin.sign_in_failed", "A sign-in failed.";
    SchemaExtensionCreated => "schema_extension.created", "A custom schema extension was defined.";
    SchemaExtensionChanged => "schema_extension.changed", "An attribute of a custom schema extension was removed, with its values; `detail.users` counts the users changed.";
    OrganizationCreated => "organization.created", "An organization was created.";
    OrganizationChanged => "organization.changed", "An organization was renamed, given a host name, suspended or resumed.";
    OrganizationDeleted => "organization.deleted", "An organization was deleted, with all its data.";
    SchemaExtensionDeleted => "schema_extension.deleted", "A custom schema extension was removed, with its values; `detail.users` counts the users changed.";
}

impl Event {
    /// The event of a stored form.
    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// Whether it is a change of a SCIM resource (a User or a Group), as
    /// opposed to an admin event.
    pub fn is_scim(self) -> bool {
        self.as_str().starts_with("user.") || self.as_str().starts_with("group.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_parses_back_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for e in Event::ALL {
            assert_eq!(Event::parse(e.as_str()), Some(*e));
            assert!(seen.insert(e.as_str()), "{} twice", e.as_str());
        }
        assert_eq!(Event::parse("user.nope"), None);
        assert!(Event::MembersAdded.is_scim());
        assert!(!Event::SyncEnabled.is_scim());
    }
}
