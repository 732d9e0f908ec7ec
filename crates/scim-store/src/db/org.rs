//! The organization a row belongs to (docs/ORGANIZATIONS.md): the key every
//! directory-scoped table carries in `org_id`, and the id of the rows of
//! the per-organization one-row tables (`sync_state`, `runtime_settings`,
//! `saml_settings`).

use serde::{Deserialize, Serialize};

/// An organization's id. The default organization, which holds everything
/// a single-directory installation has, is [`OrgId::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i32);

impl OrgId {
    /// The default organization (slug `default`), served at the plain SCIM
    /// base path.
    pub const DEFAULT: OrgId = OrgId(1);
}

impl Default for OrgId {
    fn default() -> Self {
        OrgId::DEFAULT
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
