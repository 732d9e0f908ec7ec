//! Request and response bodies of the admin API (documented with
//! `utoipa::ToSchema`). Every request body rejects unknown fields, so a
//! typo is an error rather than a silently ignored setting.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::saml::CertificateInfo;

/// A caution and whether it was accepted when synchronization was enabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CautionView {
    /// Stable id, sent back in `accepted_cautions` to enable.
    #[schema(example = "username-matching")]
    pub id: String,
    /// What the administrator must know.
    pub text: String,
    /// Accepted by the administrator who enabled synchronization (always
    /// false while it is disabled).
    pub accepted: bool,
}

/// A prerequisite of enabling synchronization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PrerequisiteView {
    /// Stable id.
    #[schema(example = "saml-configured")]
    pub id: String,
    /// What is required.
    pub description: String,
    /// Whether it is met.
    pub satisfied: bool,
}

/// The User Synchronization state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncStatus {
    /// Whether the SCIM API accepts the identity provider's requests.
    pub enabled: bool,
    /// When it was last enabled.
    pub enabled_at: Option<String>,
    /// Who last enabled it (`admin:NAME`, `token:NAME`, `cli:USER`).
    pub enabled_by: Option<String>,
    /// When it was last enabled or disabled.
    pub changed_at: Option<String>,
    /// Who last enabled or disabled it.
    pub changed_by: Option<String>,
    /// The cautions to accept.
    pub cautions: Vec<CautionView>,
    /// The prerequisites and whether they are met.
    pub prerequisites: Vec<PrerequisiteView>,
}

/// `POST /sync/enable`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableSyncRequest {
    /// The ids of every caution, each read and accepted.
    pub accepted_cautions: Vec<String>,
}

/// One change of the User Synchronization state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncEventView {
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// `enabled` or `disabled`.
    pub action: String,
    /// What was accepted, or why.
    pub detail: String,
}

/// SAML sign-in settings as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SamlView {
    /// Whether SAML sign-in is configured.
    pub configured: bool,
    /// The IdP's entity ID.
    pub entity_id: Option<String>,
    /// The IdP's SSO URL.
    pub sso_url: Option<String>,
    /// The signing certificate.
    pub certificate: Option<CertificateInfo>,
    /// The signing certificate, PEM.
    pub certificate_pem: Option<String>,
    /// Last change.
    pub updated_at: Option<String>,
    /// Who made the last change.
    pub updated_by: Option<String>,
}

/// `PUT /saml`: either `metadata_xml`, or all of `entity_id`, `sso_url`
/// and `certificate_pem`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlUpdate {
    /// The IdP's SAML 2.0 metadata document (Entra: "Federation Metadata XML").
    pub metadata_xml: Option<String>,
    /// The IdP's entity ID (Entra: "Microsoft Entra Identifier").
    pub entity_id: Option<String>,
    /// The IdP's SSO URL (Entra: "Login URL").
    pub sso_url: Option<String>,
    /// The IdP's signing certificate, PEM (Entra: "Certificate (Base64)").
    pub certificate_pem: Option<String>,
}

/// The deprovisioning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeprovisioningPolicy {
    /// DELETE removes the user at once.
    Hard,
    /// DELETE suspends the user, kept for the retention period, then purged.
    Soft,
}

/// Run-time settings. The `ETag` header carries `version`; send it back
/// in `If-Match` to update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SettingsView {
    /// What DELETE of a user does.
    pub deprovisioning: DeprovisioningPolicy,
    /// Days a soft-deleted user is kept (1–3650).
    pub soft_delete_retention_days: i32,
    /// Page size when a list request gives no `count` (1–`max_page_size`).
    pub default_page_size: i32,
    /// Largest page size (1–10000).
    pub max_page_size: i32,
    /// The version (the ETag is `"<version>"`).
    pub version: i64,
    /// Last change.
    pub updated_at: Option<String>,
    /// Who made the last change.
    pub updated_by: Option<String>,
}

/// `PUT /settings`: every value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// What DELETE of a user does.
    pub deprovisioning: DeprovisioningPolicy,
    /// Days a soft-deleted user is kept (1–3650).
    pub soft_delete_retention_days: i32,
    /// Page size when a list request gives no `count`.
    pub default_page_size: i32,
    /// Largest page size (1–10000).
    pub max_page_size: i32,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: String,
    /// Label.
    pub name: String,
    /// The first characters of the secret.
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// Creation time.
    pub created_at: String,
    /// Who created it: `admin:<name>` (console), `token:<name>` (admin API
    /// token), `cli:<login>` (`scimd token create`). Absent for SCIM tokens
    /// created before scimd recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Last successful use.
    pub last_used_at: Option<String>,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
}

/// `POST /scim-tokens`, `POST /admin-tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label (1–200 characters), e.g. "Entra ID production".
    pub name: String,
    /// Expiry (RFC 3339), or none.
    pub expires_at: Option<String>,
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    pub token: TokenView,
    /// The secret: store it now, it cannot be shown again.
    pub secret: String,
}

/// `POST /session`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The administrator's username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// The current console session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// The administrator.
    pub username: String,
    /// Send this in the `X-CSRF-Token` header on every POST, PUT, PATCH and
    /// DELETE made with the session cookie.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: String,
}

/// `GET /setup`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SetupStatus {
    /// True while no administrator exists: the setup code from the log
    /// creates the first one.
    pub required: bool,
}

/// `POST /setup`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time setup code printed in scimd's log at startup.
    pub code: String,
    /// The first administrator's username.
    pub username: String,
    /// Its password (at least 12 characters).
    pub password: String,
}

/// An administrator.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminView {
    /// Id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Creation time.
    pub created_at: String,
}
