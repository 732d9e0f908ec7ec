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
    #[schema(
        example = "Users are matched by userName (usually the email address), case-insensitively: Alice@Example.com and alice@example.com are the same user, and the identity provider cannot create a second user whose userName differs only in case."
    )]
    pub text: String,
    /// Accepted by the administrator who enabled synchronization (always
    /// false while it is disabled).
    #[schema(example = true)]
    pub accepted: bool,
}

/// A prerequisite of enabling synchronization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PrerequisiteView {
    /// Stable id.
    #[schema(example = "saml-configured")]
    pub id: String,
    /// What is required.
    #[schema(example = "SAML sign-in is configured")]
    pub description: String,
    /// Whether it is met.
    #[schema(example = true)]
    pub satisfied: bool,
}

/// The User Synchronization state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncStatus {
    /// Whether the SCIM API accepts the identity provider's requests.
    #[schema(example = true)]
    pub enabled: bool,
    /// When it was last enabled.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub enabled_at: Option<String>,
    /// Who last enabled it (`admin:NAME`, `token:NAME`, `cli:USER`).
    #[schema(example = "admin:alice")]
    pub enabled_by: Option<String>,
    /// When it was last enabled or disabled.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub changed_at: Option<String>,
    /// Who last enabled or disabled it.
    #[schema(example = "admin:alice")]
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
    #[schema(example = json!(["username-matching", "deprovisioned-users-remain", "local-changes-overwritten", "refused-while-disabled", "deletes-follow-policy"]))]
    pub accepted_cautions: Vec<String>,
}

/// One change of the User Synchronization state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncEventView {
    /// When.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub at: String,
    /// Who.
    #[schema(example = "admin:alice")]
    pub actor: String,
    /// `enabled` or `disabled`.
    #[schema(example = "enabled")]
    pub action: String,
    /// What was accepted, or why.
    #[schema(
        example = "accepted: username-matching, deprovisioned-users-remain, local-changes-overwritten, refused-while-disabled, deletes-follow-policy"
    )]
    pub detail: String,
}

/// SAML sign-in settings as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SamlView {
    /// Whether SAML sign-in is configured.
    #[schema(example = true)]
    pub configured: bool,
    /// The IdP's entity ID.
    #[schema(example = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/")]
    pub entity_id: Option<String>,
    /// The IdP's SSO URL.
    #[schema(
        example = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2"
    )]
    pub sso_url: Option<String>,
    /// The signing certificate.
    pub certificate: Option<CertificateInfo>,
    /// The signing certificate, PEM.
    #[schema(example = json!(crate::openapi::EXAMPLE_CERTIFICATE_PEM))]
    pub certificate_pem: Option<String>,
    /// Last change.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub updated_at: Option<String>,
    /// Who made the last change.
    #[schema(example = "admin:alice")]
    pub updated_by: Option<String>,
}

/// What to enter in the identity provider's SAML app so that
/// administrators can sign in to the console with SAML (docs/ADMIN.md,
/// "SAML sign-in to the console").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SamlServiceProviderView {
    /// scimd's entity ID (Entra: "Identifier (Entity ID)"); also the URL
    /// of its SAML metadata.
    #[schema(example = "https://scim.example.com/admin/saml/metadata")]
    pub entity_id: String,
    /// The Assertion Consumer Service, HTTP-POST binding (Entra: "Reply
    /// URL").
    #[schema(example = "https://scim.example.com/admin/saml/acs")]
    pub acs_url: String,
    /// Where SP-initiated sign-in starts (Entra: "Sign on URL", optional).
    #[schema(example = "https://scim.example.com/admin/saml/sign-in")]
    pub sign_in_url: String,
}

/// `PUT /saml`: either `metadata_xml`, or all of `entity_id`, `sso_url`
/// and `certificate_pem`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlUpdate {
    /// The IdP's SAML 2.0 metadata document (Entra: "Federation Metadata XML").
    #[schema(example = json!(null))]
    pub metadata_xml: Option<String>,
    /// The IdP's entity ID (Entra: "Microsoft Entra Identifier").
    #[schema(example = "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/")]
    pub entity_id: Option<String>,
    /// The IdP's SSO URL (Entra: "Login URL").
    #[schema(
        example = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/saml2"
    )]
    pub sso_url: Option<String>,
    /// The IdP's signing certificate, PEM (Entra: "Certificate (Base64)").
    #[schema(example = json!(crate::openapi::EXAMPLE_CERTIFICATE_PEM))]
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
    #[schema(example = 30, minimum = 1, maximum = 3650)]
    pub soft_delete_retention_days: i32,
    /// Page size when a list request gives no `count` (1–`max_page_size`).
    #[schema(example = 100, minimum = 1, maximum = 10000)]
    pub default_page_size: i32,
    /// Largest page size (1–10000).
    #[schema(example = 1000, minimum = 1, maximum = 10000)]
    pub max_page_size: i32,
    /// Days the change log (the Activity page, the timelines) keeps a
    /// row before the retention purge deletes it (1–3650).
    #[schema(example = 90, minimum = 1, maximum = 3650)]
    pub change_log_retention_days: i32,
    /// The quarantine early warning: a credential whose recent SCIM
    /// requests fail at or above this percentage raises a warning (1–100).
    #[schema(example = 40, minimum = 1, maximum = 100)]
    pub health_failure_percent: i32,
    /// The silence warning: no SCIM request for this many minutes while
    /// synchronization is enabled (5–10080).
    #[schema(example = 120, minimum = 5, maximum = 10080)]
    pub health_silence_minutes: i32,
    /// The quarantine early warning's recent window: a credential's last
    /// this many requests (10–1000)…
    #[schema(example = 100, minimum = 10, maximum = 1000)]
    pub health_window_requests: i32,
    /// …or, when they are more, all of its requests of the last this many
    /// minutes (1–60).
    #[schema(example = 15, minimum = 1, maximum = 60)]
    pub health_window_minutes: i32,
    /// The version (the ETag is `"<version>"`).
    #[schema(example = 3)]
    pub version: i64,
    /// Last change.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub updated_at: Option<String>,
    /// Who made the last change.
    #[schema(example = "admin:alice")]
    pub updated_by: Option<String>,
}

/// `PUT /settings`: every value (`change_log_retention_days` and the
/// `health_…` values may be left out).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// What DELETE of a user does.
    pub deprovisioning: DeprovisioningPolicy,
    /// Days a soft-deleted user is kept (1–3650).
    #[schema(example = 30, minimum = 1, maximum = 3650)]
    pub soft_delete_retention_days: i32,
    /// Page size when a list request gives no `count`.
    #[schema(example = 100, minimum = 1, maximum = 10000)]
    pub default_page_size: i32,
    /// Largest page size (1–10000).
    #[schema(example = 1000, minimum = 1, maximum = 10000)]
    pub max_page_size: i32,
    /// Days the change log keeps a row (1–3650); left out, it stays as
    /// it is.
    #[serde(default)]
    #[schema(example = 90, minimum = 1, maximum = 3650)]
    pub change_log_retention_days: Option<i32>,
    /// The failure ratio (percent, 1–100) of a credential's recent
    /// requests that raises the quarantine warning; left out, it stays.
    #[serde(default)]
    #[schema(example = 40, minimum = 1, maximum = 100)]
    pub health_failure_percent: Option<i32>,
    /// Minutes without a SCIM request (synchronization enabled) that raise
    /// the silence warning (5–10080); left out, it stays.
    #[serde(default)]
    #[schema(example = 120, minimum = 5, maximum = 10080)]
    pub health_silence_minutes: Option<i32>,
    /// The recent window's newest requests (10–1000); left out, it stays.
    #[serde(default)]
    #[schema(example = 100, minimum = 10, maximum = 1000)]
    pub health_window_requests: Option<i32>,
    /// The recent window's minutes (1–60): when the last this many
    /// minutes hold more requests than `health_window_requests`, the
    /// window is all of them; left out, it stays.
    #[serde(default)]
    #[schema(example = 15, minimum = 1, maximum = 60)]
    pub health_window_minutes: Option<i32>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    #[schema(example = "0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d")]
    pub id: String,
    /// Label.
    #[schema(example = "Entra ID production")]
    pub name: String,
    /// The first characters of the secret.
    #[schema(example = "scimd_Xk2Lp9Y")]
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    #[schema(example = "active")]
    pub state: String,
    /// Creation time.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub created_at: String,
    /// Who created it: `admin:<name>` (console), `token:<name>` (admin API
    /// token), `cli:<login>` (`scimd token create`). Absent for SCIM tokens
    /// created before scimd recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "admin:alice")]
    pub created_by: Option<String>,
    /// Last successful use.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub last_used_at: Option<String>,
    /// Expiry.
    #[schema(example = "2030-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
    /// Revocation time.
    #[schema(example = json!(null))]
    pub revoked_at: Option<String>,
}

/// `POST /scim-tokens`, `POST /admin-tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label (1–200 characters), e.g. "Entra ID production".
    #[schema(example = "Entra ID production")]
    pub name: String,
    /// Expiry (RFC 3339), or none.
    #[schema(example = "2030-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// A token just created: the secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    pub token: TokenView,
    /// The secret: store it now, it cannot be shown again.
    #[schema(example = "scimd_Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2sJq3v0Zr8n1Wm")]
    pub secret: String,
}

/// `POST /session`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The administrator's username.
    #[schema(example = "alice")]
    pub username: String,
    /// The password.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// The current console session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// The administrator.
    #[schema(example = "alice")]
    pub username: String,
    /// Send this in the `X-CSRF-Token` header on every POST, PUT, PATCH and
    /// DELETE made with the session cookie.
    #[schema(example = "k9Zr2Xw7Lq4Tn8Vb1Mc6Hd3Js5Gf0Ka2Pe4Rt6Yu8Io")]
    pub csrf_token: String,
    /// When the session ends.
    #[schema(example = "2030-01-01T00:00:00Z")]
    pub expires_at: String,
}

/// `GET /setup`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SetupStatus {
    /// True while no administrator exists: the setup code from the log
    /// creates the first one.
    #[schema(example = false)]
    pub required: bool,
}

/// `POST /setup`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The one-time setup code printed in scimd's log at startup.
    #[schema(example = "Hq2Zt7Lx0Vb9Nc4Mw6Kp1Rj8Sd3Fg5Ty2Ue7Io0PaWs")]
    pub code: String,
    /// The first administrator's username.
    #[schema(example = "alice")]
    pub username: String,
    /// Its password (at least 12 characters).
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// An administrator.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminView {
    /// Id.
    #[schema(example = "0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d")]
    pub id: String,
    /// Username.
    #[schema(example = "alice")]
    pub username: String,
    /// Creation time.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub created_at: String,
}
