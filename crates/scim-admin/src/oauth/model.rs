//! Request and response bodies of the OAuth parts of the admin API.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /oauth-clients`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// A label, shown on the consent page (e.g. "Microsoft Entra ID").
    #[schema(example = "Microsoft Entra ID")]
    pub name: String,
    /// The exact redirect URIs (https, no fragment; http only for
    /// localhost). Compared character for character.
    #[schema(example = json!(["https://portal.azure.com/TokenAuthorize"]))]
    pub redirect_uris: Vec<String>,
    /// The scopes the client may ask for; default `["scim"]`, the only one.
    #[schema(example = json!(["scim"]))]
    pub scopes: Option<Vec<String>>,
}

/// A registered OAuth client (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientView {
    /// The public client_id.
    #[schema(example = "3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c")]
    pub client_id: String,
    /// The label.
    #[schema(example = "Microsoft Entra ID")]
    pub name: String,
    /// The exact redirect URIs.
    #[schema(example = json!(["https://portal.azure.com/TokenAuthorize"]))]
    pub redirect_uris: Vec<String>,
    /// The allowed scopes.
    #[schema(example = json!(["scim"]))]
    pub scopes: Vec<String>,
    /// The first characters of the secret, to recognise it.
    #[schema(example = "scimd_cs_Jq3v0")]
    pub secret_prefix: String,
    /// Creation time.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub created_at: String,
    /// Who registered it.
    #[schema(example = "admin:alice")]
    pub created_by: String,
    /// Last secret rotation.
    #[schema(example = "2026-12-06T09:30:00Z")]
    pub secret_rotated_at: Option<String>,
}

/// A client with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    pub client: ClientView,
    /// The client secret; store it in the identity provider now.
    #[schema(example = "scimd_cs_Jq3v0Zr8n1Wm5Tb7Xk2Lp9Yd4Hs6Gc0FaQ1wE3rT5yU7iO9pA2s")]
    pub client_secret: String,
}

/// A grant: one approval on the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GrantView {
    /// The grant's id.
    #[schema(example = "6c9e2b1a-3d4f-4a5b-8c7d-0e1f2a3b4c5d")]
    pub id: String,
    /// The client.
    #[schema(example = "3f2c1a8e-5b7d-4e9f-a0c6-1d2e3f4a5b6c")]
    pub client_id: String,
    /// The client's name.
    #[schema(example = "Microsoft Entra ID")]
    pub client_name: String,
    /// The administrator who approved it.
    #[schema(example = "alice")]
    pub approved_by: String,
    /// The granted scope.
    #[schema(example = "scim")]
    pub scope: String,
    /// When it was approved.
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub created_at: String,
    /// Last use of one of its tokens (recorded at most once a minute).
    #[schema(example = "2026-12-06T09:14:03Z")]
    pub last_used_at: Option<String>,
    /// `active` or `revoked`.
    #[schema(example = "active")]
    pub state: String,
    /// Revocation time.
    #[schema(example = json!(null))]
    pub revoked_at: Option<String>,
    /// Why it was revoked (an administrator, the client, or reuse of a
    /// code or refresh token).
    #[schema(example = json!(null))]
    pub revoked_reason: Option<String>,
}
