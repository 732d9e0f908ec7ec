//! The one error type of the SCIM API, rendered as an RFC 7644 §3.12
//! error document with `Content-Type: application/scim+json`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use scim_core::schema::ERROR_SCHEMA;
use scim_core::ScimError;
use scim_store::StoreError;

/// The SCIM media type, used on every response.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Everything a SCIM request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client error with a `scimType` (400, or 409 for uniqueness).
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// No such resource or route (404).
    #[error("{0}")]
    NotFound(String),
    /// `If-Match` did not match the current version (412).
    #[error("the resource was modified: its version no longer matches If-Match")]
    PreconditionFailed,
    /// Missing or invalid bearer token (401).
    #[error("{detail}")]
    Unauthorized {
        /// What was wrong with the credentials.
        detail: String,
        /// Whether a token was presented (changes `WWW-Authenticate`).
        token_presented: bool,
    },
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The method is not supported on this endpoint (405), with the
    /// methods it supports for the `Allow` header (RFC 9110 §15.5.6).
    #[error("{detail}")]
    MethodNotAllowed {
        /// Which method was refused where.
        detail: String,
        /// The endpoint's methods, comma-separated (`GET, POST`).
        allow: &'static str,
    },
    /// The body is larger than allowed (413).
    #[error("the request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// A `/Bulk` request over `maxOperations` or `maxPayloadSize` (413,
    /// RFC 7644 §3.7.4), saying which limit and how to stay within it.
    #[error("{0}")]
    BulkTooLarge(String),
    /// The request conflicts with the state it needs (409) in a way no
    /// `scimType` names: a `/Bulk` operation whose `bulkId` reference
    /// cannot be resolved (RFC 7644 §3.7.1, §3.7.2).
    #[error("{0}")]
    Conflict(String),
    /// The body did not arrive within this many seconds of the request
    /// head (408, RFC 9110 §15.5.9).
    #[error(
        "the request body did not arrive within {0} seconds; send the whole body without pauses"
    )]
    RequestTimeout(u64),
    /// The body is not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The credential sent more requests than its rate limit allows (429,
    /// RFC 6585 §4; `crate::rate_limit`).
    #[error(
        "too many requests with this bearer token; slow down and retry in {retry_after_secs} {}",
        if *retry_after_secs == 1 { "second" } else { "seconds" }
    )]
    TooManyRequests {
        /// What to send in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The database is unreachable or saturated (503).
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable,
    /// Every password-hashing slot stayed busy for the queue timeout (503).
    #[error("too many passwords are being hashed at once; retry in {retry_after_secs} seconds")]
    HashingBusy {
        /// What to send in `Retry-After`.
        retry_after_secs: u64,
    },
    /// An unexpected failure (500); details are logged, never returned.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 404 for a resource id.
    pub fn resource_not_found(kind: &str, id: &str) -> Self {
        ApiError::NotFound(format!("{kind} {id:?} not found"))
    }

    /// The detail the error document carries (RFC 7644 §3.12).
    pub fn detail(&self) -> String {
        match self {
            ApiError::Scim(e) => e.detail.clone(),
            other => other.to_string(),
        }
    }

    /// The RFC 7644 §3.12 `scimType` of the error, if it has one.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            ApiError::Scim(e) => Some(e.scim_type.as_str()),
            _ => None,
        }
    }

    /// The RFC 7644 §3.12 error document: the body of the error's
    /// response, and the `response` of a failed `/Bulk` operation
    /// (RFC 7644 §3.7.3).
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status_code().as_u16().to_string(),
            "detail": self.detail(),
        });
        if let (Some(t), Some(obj)) = (self.scim_type(), body.as_object_mut()) {
            obj.insert("scimType".into(), t.into());
        }
        body
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            // The administrator's switch, not an outage.
            StoreError::SyncDisabled => {
                ApiError::Forbidden(scim_store::sync::SYNC_DISABLED_DETAIL.to_owned())
            }
            StoreError::NotFound => ApiError::NotFound("resource not found".into()),
            StoreError::Conflict(detail) => ApiError::Scim(ScimError::uniqueness(detail)),
            StoreError::PreconditionFailed => ApiError::PreconditionFailed,
            StoreError::Invalid(e) => ApiError::Scim(e),
            StoreError::Unavailable(_) => ApiError::Unavailable,
            StoreError::Internal(_) => ApiError::Internal,
        }
    }
}

impl From<scim_store::PasswordError> for ApiError {
    fn from(err: scim_store::PasswordError) -> Self {
        match err {
            scim_store::PasswordError::Busy { retry_after_secs } => {
                ApiError::HashingBusy { retry_after_secs }
            }
            scim_store::PasswordError::Failed => ApiError::Internal,
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task failed");
        ApiError::Internal
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Scim(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) | ApiError::BulkTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable | ApiError::HashingBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = self.body();
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CONTENT_TYPE, SCIM_CONTENT_TYPE));
        if let ApiError::Unauthorized {
            token_presented, ..
        } = self
        {
            let value = if *token_presented {
                r#"Bearer realm="scimd", error="invalid_token""#
            } else {
                r#"Bearer realm="scimd""#
            };
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        match self {
            ApiError::MethodNotAllowed { allow, .. } => {
                res.insert_header((header::ALLOW, *allow));
            }
            ApiError::Unavailable => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::HashingBusy { retry_after_secs }
            | ApiError::TooManyRequests { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        res.body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(err: &ApiError) -> (u16, serde_json::Value) {
        let res = err.error_response();
        let status = res.status().as_u16();
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            SCIM_CONTENT_TYPE
        );
        let bytes = res.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn every_variant_maps_to_its_status_and_a_scim_body() {
        let cases: Vec<(ApiError, u16, Option<&str>)> = vec![
            (
                ScimError::invalid_filter("x").into(),
                400,
                Some("invalidFilter"),
            ),
            (
                ScimError::uniqueness("taken").into(),
                409,
                Some("uniqueness"),
            ),
            (ApiError::NotFound("nope".into()), 404, None),
            (ApiError::PreconditionFailed, 412, None),
            (
                ApiError::Unauthorized {
                    detail: "no".into(),
                    token_presented: false,
                },
                401,
                None,
            ),
            (ApiError::Forbidden("off".into()), 403, None),
            (
                ApiError::MethodNotAllowed {
                    detail: "m".into(),
                    allow: "GET",
                },
                405,
                None,
            ),
            (ApiError::PayloadTooLarge(10), 413, None),
            (ApiError::BulkTooLarge("ops".into()), 413, None),
            (ApiError::Conflict("cycle".into()), 409, None),
            (ApiError::RequestTimeout(30), 408, None),
            (ApiError::UnsupportedMediaType("t".into()), 415, None),
            (
                ApiError::TooManyRequests {
                    retry_after_secs: 2,
                },
                429,
                None,
            ),
            (ApiError::Unavailable, 503, None),
            (
                ApiError::HashingBusy {
                    retry_after_secs: 5,
                },
                503,
                None,
            ),
            (ApiError::Internal, 500, None),
        ];
        for (err, status, scim_type) in cases {
            let (got, body) = body_of(&err);
            assert_eq!(got, status);
            assert_eq!(body["status"], status.to_string());
            assert_eq!(body["schemas"][0], ERROR_SCHEMA);
            assert_eq!(body["scimType"].as_str(), scim_type);
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }

    #[test]
    fn store_errors_map_explicitly() {
        assert!(matches!(
            ApiError::from(StoreError::Conflict("x".into())),
            ApiError::Scim(ScimError {
                scim_type: scim_core::ScimType::Uniqueness,
                ..
            })
        ));
        assert!(matches!(
            ApiError::from(StoreError::PreconditionFailed),
            ApiError::PreconditionFailed
        ));
        assert!(matches!(
            ApiError::from(StoreError::Unavailable("pool".into())),
            ApiError::Unavailable
        ));
        let gate = ApiError::from(scim_store::sync::sync_disabled_error());
        let (status, body) = body_of(&gate);
        assert_eq!(status, 403);
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("user synchronization is disabled"));
        let internal = ApiError::from(StoreError::Internal("secret sql".into()));
        let (_, body) = body_of(&internal);
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let res = ApiError::MethodNotAllowed {
            detail: "no".into(),
            allow: "GET, POST",
        }
        .error_response();
        assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET, POST");
    }

    #[test]
    fn a_busy_password_gate_is_503_with_retry_after() {
        let err = ApiError::from(scim_store::PasswordError::Busy {
            retry_after_secs: 7,
        });
        let res = err.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "7");
        assert!(matches!(
            ApiError::from(scim_store::PasswordError::Failed),
            ApiError::Internal
        ));
    }

    #[test]
    fn too_many_requests_is_429_with_retry_after() {
        let res = ApiError::TooManyRequests {
            retry_after_secs: 3,
        }
        .error_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "3");
        let (_, body) = body_of(&ApiError::TooManyRequests {
            retry_after_secs: 1,
        });
        assert_eq!(
            body["detail"],
            "too many requests with this bearer token; slow down and retry in 1 second"
        );
    }

    #[test]
    fn unauthorized_sets_www_authenticate() {
        let res = ApiError::Unauthorized {
            detail: "bad".into(),
            token_presented: true,
        }
        .error_response();
        let v = res.headers().get(header::WWW_AUTHENTICATE).unwrap();
        assert!(v.to_str().unwrap().starts_with("Bearer"));
    }
}
