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
    pub scopes: Option<Vec<String>>,
}

/// A registered OAuth client (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientView {
    /// The public client_id.
    pub client_id: String,
    /// The label.
    pub name: String,
    /// The exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The allowed scopes.
    pub scopes: Vec<String>,
    /// The first characters of the secret, to recognise it.
    pub secret_prefix: String,
    /// Creation time.
    pub created_at: String,
    /// Who registered it.
    pub created_by: String,
    /// Last secret rotation.
    pub secret_rotated_at: Option<String>,
}

/// A client with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedClient {
    /// The client.
    pub client: ClientView,
    /// The client secret; store it in the identity provider now.
    pub client_secret: String,
}

/// A grant: one approval on the consent page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GrantView {
    /// The grant's id.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The client's name.
    pub client_name: String,
    /// The administrator who approved it.
    pub approved_by: String,
    /// The granted scope.
    pub scope: String,
    /// When it was approved.
    pub created_at: String,
    /// Last use of one of its tokens (recorded at most once a minute).
    pub last_used_at: Option<String>,
    /// `active` or `revoked`.
    pub state: String,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// Why it was revoked (an administrator, the client, or reuse of a
    /// code or refresh token).
    pub revoked_reason: Option<String>,
}
