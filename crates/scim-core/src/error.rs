//! Protocol errors (RFC 7644 §3.12), carried as data with no HTTP types.

use std::fmt;

/// The `scimType` keyword of an RFC 7644 §3.12 error (Table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    /// The filter syntax was invalid or the attribute is not filterable.
    InvalidFilter,
    /// The filter yields too many results for the server to process.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The specified `path` did not yield an attribute that could be operated on.
    NoTarget,
    /// A required value was missing, or the value specified was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
    /// The `cursor` is not one this service issued for this query (RFC 9865 §2.1).
    InvalidCursor,
    /// The `cursor` has outlived `cursorTimeout` (RFC 9865 §2.1).
    ExpiredCursor,
    /// The `count` of a cursor-paged query is not a positive integer (RFC 9865 §2.1).
    InvalidCount,
}

impl ScimType {
    /// The keyword as it appears in the `scimType` member.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client error in SCIM terms: the `scimType` and a `detail` that tells
/// the caller what to fix. The HTTP status follows from the type (400 for
/// all but `uniqueness`, which is 409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scim_type}: {detail}")]
pub struct ScimError {
    /// The RFC 7644 `scimType`.
    pub scim_type: ScimType,
    /// A human-readable explanation that names what to fix.
    pub detail: String,
}

impl ScimError {
    /// Builds an error of the given type.
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            scim_type,
            detail: detail.into(),
        }
    }

    /// `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidFilter, detail)
    }

    /// `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidPath, detail)
    }

    /// `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidValue, detail)
    }

    /// `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidSyntax, detail)
    }

    /// `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(ScimType::NoTarget, detail)
    }

    /// `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Mutability, detail)
    }

    /// `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Uniqueness, detail)
    }

    /// The HTTP status this error is answered with (RFC 7644 §3.12, Table 9).
    pub fn status(&self) -> u16 {
        match self.scim_type {
            ScimType::Uniqueness => 409,
            ScimType::Sensitive => 403,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_table_9() {
        assert_eq!(ScimError::uniqueness("x").status(), 409);
        assert_eq!(ScimError::invalid_filter("x").status(), 400);
        assert_eq!(ScimError::mutability("x").status(), 400);
        assert_eq!(ScimError::new(ScimType::Sensitive, "x").status(), 403);
        assert_eq!(ScimType::NoTarget.to_string(), "noTarget");
        assert_eq!(ScimError::new(ScimType::ExpiredCursor, "x").status(), 400);
        assert_eq!(ScimType::InvalidCursor.to_string(), "invalidCursor");
    }
}
