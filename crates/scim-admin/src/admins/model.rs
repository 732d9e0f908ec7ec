//! Request and response bodies of the administrator endpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An administrator, with the state of its sign-in limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AdminDetails {
    /// Id.
    #[schema(example = "0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d")]
    pub id: String,
    /// Username.
    #[schema(example = "alice")]
    pub username: String,
    /// `enabled` or `disabled`.
    #[schema(example = "enabled")]
    pub state: String,
    /// `instance` (every organization, and the organizations themselves)
    /// or `organization` (only `organizations`).
    #[schema(example = "organization")]
    pub role: String,
    /// The organizations an organization administrator acts on, by slug
    /// (empty for an instance administrator).
    #[schema(example = json!(["acme"]))]
    pub organizations: Vec<String>,
    /// Creation time.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub created_at: String,
    /// Last successful sign-in.
    #[schema(example = "2026-12-06T10:02:41Z")]
    pub last_login_at: Option<String>,
    /// When it was disabled.
    #[schema(example = json!(null))]
    pub disabled_at: Option<String>,
    /// Failed sign-ins at this account within the sign-in window, from
    /// every address.
    #[schema(example = 5)]
    pub recent_failures: i64,
    /// The addresses this account is locked out from (they reached the
    /// per-account limit within the window); `POST …/unlock` clears them.
    #[schema(example = json!(["203.0.113.7"]))]
    pub locked_from: Vec<String>,
}

/// `POST /admins`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminRequest {
    /// 1–100 letters, digits or `. _ @ - +`; unique case-insensitively.
    #[schema(example = "bob")]
    pub username: String,
    /// 12–1024 characters.
    #[schema(example = "a long passphrase for bob")]
    pub password: String,
    /// `instance` (the default) or `organization`.
    #[serde(default)]
    #[schema(example = "organization")]
    pub role: Option<String>,
    /// An organization administrator's organizations, by slug (at least
    /// one); none for an instance administrator.
    #[serde(default)]
    #[schema(example = json!(["acme"]))]
    pub organizations: Vec<String>,
}

/// `PUT /admins/{id}/role`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRoleRequest {
    /// `instance` or `organization`.
    #[schema(example = "organization")]
    pub role: String,
    /// An organization administrator's organizations, by slug (at least
    /// one; they replace the former ones); none for an instance
    /// administrator.
    #[serde(default)]
    #[schema(example = json!(["acme", "globex"]))]
    pub organizations: Vec<String>,
}

/// `POST /admins/{id}/password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The new password (12–1024 characters).
    #[schema(example = "a new passphrase for bob")]
    pub password: String,
}

/// `POST /session/password`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The signed-in administrator's current password.
    #[schema(example = "correct horse battery staple")]
    pub current_password: String,
    /// The new password (12–1024 characters).
    #[schema(example = "an even longer horse battery staple")]
    pub new_password: String,
}
