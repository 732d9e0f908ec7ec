//! Password hashing: SCIM `password` is write-only (RFC 7643 §4.1.1) and
//! scimd keeps only an Argon2id PHC string, never anything reversible.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

/// Hashes `password` with Argon2id and a random salt.
pub fn hash(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| {
            tracing::error!("password hashing failed");
            ApiError::Internal
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(!a.contains("correct horse"));
    }
}
