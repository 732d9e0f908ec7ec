//! The one error type of the admin API, rendered as JSON
//! (`application/json`) with a machine-readable `error` code, a `message`
//! saying what to fix, and field-level messages for invalid input.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use scim_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as named in the request body (`certificate_pem`,
    /// `accepted_cautions`, …).
    #[schema(example = "soft_delete_retention_days")]
    pub field: String,
    /// What is wrong and how to fix it.
    #[schema(example = "must be between 1 and 3650 days")]
    pub message: String,
}

impl FieldError {
    /// A message about `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The body of every admin API error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status.
    #[schema(example = 422)]
    pub status: u16,
    /// A stable code: `unauthorized`, `csrf_failed`, `forbidden`,
    /// `not_found`, `conflict`, `validation_failed`, `precondition_failed`,
    /// `precondition_required`, `request_timeout`, `too_many_requests`,
    /// `unavailable`, `busy`, `internal`.
    #[schema(example = "validation_failed")]
    pub error: String,
    /// What went wrong and what to do.
    #[schema(example = "soft_delete_retention_days: must be between 1 and 3650 days")]
    pub message: String,
    /// Field-level messages (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// Enabling synchronization: the caution ids not accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["deletes-follow-policy"]))]
    pub missing_cautions: Option<Vec<String>>,
    /// Enabling synchronization: the prerequisite ids not satisfied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["saml-configured"]))]
    pub missing_prerequisites: Option<Vec<String>>,
}

/// Everything an admin request (or `scimd` admin command) can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// No or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A state-changing request with the session cookie lacked the right
    /// `X-CSRF-Token` header (403).
    #[error("{0}")]
    CsrfFailed(String),
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request is ambiguous or malformed in a way no field names
    /// (400): e.g. an organization administrator of several organizations
    /// without `X-Scimd-Organization`.
    #[error("{0}")]
    BadRequest(String),
    /// No such object (404).
    #[error("{0}")]
    NotFound(String),
    /// A unique value is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// Invalid input (422), with field-level messages.
    #[error("{message}")]
    Validation {
        /// The summary.
        message: String,
        /// One entry per field at fault.
        fields: Vec<FieldError>,
    },
    /// Synchronization cannot be enabled yet (422): what is missing.
    #[error("{message}")]
    SyncNotReady {
        /// The summary.
        message: String,
        /// Caution ids not accepted.
        missing_cautions: Vec<String>,
        /// Prerequisite ids not satisfied.
        missing_prerequisites: Vec<String>,
        /// One entry per missing item.
        fields: Vec<FieldError>,
    },
    /// `If-Match` names an old version (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// `If-Match` is required and missing (428).
    #[error("{0}")]
    PreconditionRequired(String),
    /// The request body did not arrive within this many seconds of the
    /// request head (408, RFC 9110 §15.5.9).
    #[error(
        "the request body did not arrive within {0} seconds; send the whole body without pauses"
    )]
    RequestTimeout(u64),
    /// Too many failed logins (429).
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    TooManyRequests {
        /// Seconds until attempts are accepted again.
        retry_after_secs: u64,
    },
    /// The database is unreachable (503).
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable,
    /// Every password-hashing slot stayed busy for the queue timeout (503).
    #[error("too many passwords are being checked at once; retry in {retry_after_secs} seconds")]
    Busy {
        /// Seconds to wait (`Retry-After`).
        retry_after_secs: u64,
    },
    /// An unexpected failure (500); logged, never detailed.
    #[error("internal error")]
    Internal,
}

impl AdminError {
    /// A 422 about one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AdminError::Validation {
            message: format!("{field}: {message}"),
            fields: vec![FieldError::new(field, message)],
        }
    }

    /// A 422 about several fields (`fields` must not be empty).
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let message = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        AdminError::Validation { message, fields }
    }

    fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized(_) => "unauthorized",
            AdminError::CsrfFailed(_) => "csrf_failed",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Validation { .. } => "validation_failed",
            AdminError::SyncNotReady { .. } => "sync_not_ready",
            AdminError::PreconditionFailed(_) => "precondition_failed",
            AdminError::PreconditionRequired(_) => "precondition_required",
            AdminError::RequestTimeout(_) => "request_timeout",
            AdminError::TooManyRequests { .. } => "too_many_requests",
            AdminError::Unavailable => "unavailable",
            AdminError::Busy { .. } => "busy",
            AdminError::Internal => "internal",
        }
    }

    /// The body sent for this error.
    pub fn body(&self) -> ErrorBody {
        let (fields, missing_cautions, missing_prerequisites) = match self {
            AdminError::Validation { fields, .. } => (fields.clone(), None, None),
            AdminError::SyncNotReady {
                missing_cautions,
                missing_prerequisites,
                fields,
                ..
            } => (
                fields.clone(),
                Some(missing_cautions.clone()),
                Some(missing_prerequisites.clone()),
            ),
            _ => (Vec::new(), None, None),
        };
        ErrorBody {
            status: self.status_code().as_u16(),
            error: self.code().to_owned(),
            message: self.to_string(),
            fields,
            missing_cautions,
            missing_prerequisites,
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => AdminError::NotFound("not found".into()),
            StoreError::Conflict(m) => AdminError::Conflict(m),
            StoreError::PreconditionFailed => AdminError::PreconditionFailed(
                "the object was changed by someone else; reload it and apply your change again"
                    .into(),
            ),
            StoreError::Invalid(e) => AdminError::Validation {
                message: e.detail.clone(),
                fields: Vec::new(),
            },
            StoreError::Unavailable(_) => AdminError::Unavailable,
            // The admin API is never gated by the SCIM switch; should a
            // repository still report it, it is a conflict with the state.
            StoreError::SyncDisabled => {
                AdminError::Conflict(scim_store::sync::SYNC_DISABLED_DETAIL.to_owned())
            }
            StoreError::Internal(_) => AdminError::Internal,
        }
    }
}

impl From<scim_store::PasswordError> for AdminError {
    fn from(err: scim_store::PasswordError) -> Self {
        match err {
            scim_store::PasswordError::Busy { retry_after_secs } => {
                AdminError::Busy { retry_after_secs }
            }
            scim_store::PasswordError::Failed => AdminError::Internal,
        }
    }
}

impl From<actix_web::error::BlockingError> for AdminError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task failed");
        AdminError::Internal
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::CsrfFailed(_) | AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Validation { .. } | AdminError::SyncNotReady { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AdminError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AdminError::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            AdminError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AdminError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Unavailable | AdminError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            AdminError::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="scimd-admin""#));
            }
            AdminError::TooManyRequests { retry_after_secs }
            | AdminError::Busy { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AdminError::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn every_variant_has_its_status_and_a_json_body() {
        let cases: Vec<(AdminError, u16, &str)> = vec![
            (AdminError::Unauthorized("x".into()), 401, "unauthorized"),
            (AdminError::CsrfFailed("x".into()), 403, "csrf_failed"),
            (AdminError::Forbidden("x".into()), 403, "forbidden"),
            (AdminError::BadRequest("x".into()), 400, "bad_request"),
            (AdminError::NotFound("x".into()), 404, "not_found"),
            (AdminError::Conflict("x".into()), 409, "conflict"),
            (AdminError::field("name", "empty"), 422, "validation_failed"),
            (
                AdminError::SyncNotReady {
                    message: "m".into(),
                    missing_cautions: vec!["c".into()],
                    missing_prerequisites: vec![],
                    fields: vec![],
                },
                422,
                "sync_not_ready",
            ),
            (
                AdminError::PreconditionFailed("x".into()),
                412,
                "precondition_failed",
            ),
            (
                AdminError::PreconditionRequired("x".into()),
                428,
                "precondition_required",
            ),
            (AdminError::RequestTimeout(30), 408, "request_timeout"),
            (
                AdminError::TooManyRequests {
                    retry_after_secs: 60,
                },
                429,
                "too_many_requests",
            ),
            (AdminError::Unavailable, 503, "unavailable"),
            (
                AdminError::Busy {
                    retry_after_secs: 5,
                },
                503,
                "busy",
            ),
            (AdminError::Internal, 500, "internal"),
        ];
        for (err, status, code) in cases {
            let res = err.error_response();
            assert_eq!(res.status().as_u16(), status);
            if status == 429 || status == 503 {
                assert!(res.headers().contains_key(header::RETRY_AFTER), "{err:?}");
            }
            let bytes = res.into_body().try_into_bytes().unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["status"], status);
            assert_eq!(body["error"], code);
            assert!(!body["message"].as_str().unwrap().is_empty());
        }
        let body = AdminError::field("sso_url", "must be https").body();
        assert_eq!(body.fields[0].field, "sso_url");
    }

    #[test]
    fn internal_store_errors_leak_nothing() {
        let err = AdminError::from(StoreError::Internal("SELECT secret".into()));
        assert!(!err.body().message.contains("secret"));
    }
}
