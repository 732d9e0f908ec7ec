//! The OAuth 2.0 authorization server's storage (RFC 6749 §4.1, the
//! authorization code grant, with PKCE, RFC 7636, and refresh token
//! rotation per the OAuth 2.0 Security BCP §4.14).
//!
//! - A **client** is registered by an administrator for one identity
//!   provider: its exact redirect URIs and allowed scopes; its secret is
//!   shown once.
//! - A **grant** is one approval on the consent page (which client, which
//!   administrator, when); every code and token belongs to one, and
//!   revoking it (an administrator, RFC 7009, or reuse detection) stops
//!   all of them at once.
//! - **Codes** are single-use and short-lived; **refresh tokens** are
//!   rotated on every use, and presenting a rotated one again revokes the
//!   whole grant (it has leaked: either the thief or the client used it).
//!
//! Client secrets, codes and tokens are random (256 bits) and stored only
//! as SHA-256 hashes; comparisons of secret material are constant-time.
//! Single use is race-proof: `UPDATE … SET used_at WHERE used_at IS NULL`
//! succeeds for exactly one caller.
//!
//! Clients are in `clients.rs`, grants and the approval that starts one in
//! `grants.rs`, codes and tokens (exchange, rotation, authentication,
//! RFC 7009 revocation, PKCE) in `tokens.rs`; this module re-exports them
//! all, so callers name `scim_store::oauth::…`.

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

mod clients;
mod grants;
mod tokens;

pub use clients::{
    authenticate_client, create_client, delete_client, find_client, list_clients,
    rotate_client_secret, ClientRecord, CLIENT_SECRET_PREFIX,
};
pub use grants::{
    create_authorization, list_grants, revoke_grant, touch_grant, GrantRecord, NewAuthorization,
};
pub use tokens::{
    authenticate_access_token, exchange_code, grant_of_secret, is_pkce_value, pkce_s256,
    purge_expired, refresh, revoke_token, AccessTokenInfo, GrantFailure, IssuedTokens, Revocation,
    TokenLifetimes, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX,
};

/// `now` in the store's fixed-width UTC text form (`scim_core::datetime`).
fn now_text(now: OffsetDateTime) -> String {
    scim_core::datetime::format(now)
}

/// Whether two hashes of secret material are equal, compared in constant
/// time.
fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The authorization server end to end, through the re-exported API:
/// clients, approvals, codes and tokens together.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::error::StoreError;
    use crate::testing::backends;

    const URI: &str = "https://portal.azure.com/TokenAuthorize";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn lifetimes() -> TokenLifetimes {
        TokenLifetimes {
            access: time::Duration::hours(1),
            refresh: time::Duration::days(90),
        }
    }

    fn client(store: &crate::engine::Store) -> (ClientRecord, String) {
        store
            .write(|c| {
                create_client(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    "Entra ID",
                    &[URI.to_owned()],
                    &["scim".to_owned()],
                    "admin:root",
                )
            })
            .unwrap()
    }

    fn authorize(store: &crate::engine::Store, client_id: &str, challenge: Option<&str>) -> String {
        let new = NewAuthorization {
            client_id,
            redirect_uri: URI,
            scope: "scim",
            code_challenge: challenge,
            admin_id: "a1",
            admin_username: "root",
        };
        store
            .write(|c| {
                create_authorization(
                    c,
                    &new,
                    OffsetDateTime::now_utc(),
                    time::Duration::seconds(60),
                )
            })
            .unwrap()
            .1
    }

    fn exchange(
        store: &crate::engine::Store,
        client_id: &str,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<IssuedTokens, GrantFailure> {
        store
            .write(|c| {
                exchange_code(
                    c,
                    client_id,
                    code,
                    Some(URI),
                    verifier,
                    OffsetDateTime::now_utc(),
                    lifetimes(),
                )
            })
            .unwrap()
    }

    fn access_ok(store: &crate::engine::Store, token: &str) -> bool {
        let now = scim_core::datetime::now();
        store
            .read(|c| authenticate_access_token(c, token, &now))
            .unwrap()
            .is_some()
    }
    #[test]
    fn clients_are_authenticated_rotated_and_deleted() {
        for db in backends() {
            let store = db.store();
            let (client, secret) = client(store);
            assert!(secret.starts_with(CLIENT_SECRET_PREFIX));
            assert!(secret.starts_with(&client.secret_prefix));
            assert_eq!(client.redirect_uris, vec![URI.to_owned()]);
            let listed = store
                .read(|c| list_clients(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            assert_eq!(listed, vec![client.clone()]);
            let ok = |s: &str| {
                store
                    .read(|c| authenticate_client(c, &client.id, s))
                    .unwrap()
                    .is_some()
            };
            assert!(ok(&secret));
            assert!(!ok("wrong"));
            let (rotated, new_secret) = store
                .write(|c| rotate_client_secret(c, crate::db::org::OrgId::DEFAULT, &client.id))
                .unwrap();
            assert!(rotated.secret_rotated_at.is_some());
            assert!(!ok(&secret) && ok(&new_secret));
            // Deleting the client revokes everything issued to it.
            let code = authorize(store, &client.id, None);
            let tokens = exchange(store, &client.id, &code, None).unwrap();
            assert!(access_ok(store, &tokens.access_token));
            store
                .write(|c| delete_client(c, crate::db::org::OrgId::DEFAULT, &client.id))
                .unwrap();
            assert!(!access_ok(store, &tokens.access_token));
            assert!(store
                .read(|c| list_grants(c, crate::db::org::OrgId::DEFAULT))
                .unwrap()
                .is_empty());
            let err = store
                .write(|c| delete_client(c, crate::db::org::OrgId::DEFAULT, &client.id))
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
            let err = store
                .write(|c| rotate_client_secret(c, crate::db::org::OrgId::DEFAULT, "nope"))
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
        }
    }

    #[test]
    fn codes_are_single_use_and_reuse_revokes_the_grant() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let challenge = pkce_s256(VERIFIER);
            let code = authorize(store, &client.id, Some(&challenge));
            // PKCE: missing or wrong verifier.
            assert_eq!(
                exchange(store, &client.id, &code, None),
                Err(GrantFailure::PkceFailed)
            );
            let wrong = VERIFIER.replace('d', "e");
            assert_eq!(
                exchange(store, &client.id, &code, Some(&wrong)),
                Err(GrantFailure::PkceFailed)
            );
            // Another client, a wrong redirect URI.
            assert_eq!(
                exchange(store, "other", &code, Some(VERIFIER)),
                Err(GrantFailure::Unknown)
            );
            let mismatch = store
                .write(|c| {
                    exchange_code(
                        c,
                        &client.id,
                        &code,
                        Some("https://evil.example/cb"),
                        Some(VERIFIER),
                        OffsetDateTime::now_utc(),
                        lifetimes(),
                    )
                })
                .unwrap();
            assert_eq!(mismatch, Err(GrantFailure::RedirectUriMismatch));
            let tokens = exchange(store, &client.id, &code, Some(VERIFIER)).unwrap();
            assert!(tokens.access_token.starts_with(ACCESS_TOKEN_PREFIX));
            assert!(tokens.refresh_token.starts_with(REFRESH_TOKEN_PREFIX));
            assert_eq!(tokens.expires_in, 3600);
            assert!(access_ok(store, &tokens.access_token));
            // Reuse: refused, and the tokens issued from it stop working.
            assert_eq!(
                exchange(store, &client.id, &code, Some(VERIFIER)),
                Err(GrantFailure::CodeReused)
            );
            assert!(!access_ok(store, &tokens.access_token));
            let grants = store
                .read(|c| list_grants(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            assert_eq!(
                grants[0].0.revoked_reason.as_deref(),
                Some("authorization code reused")
            );
            assert_eq!(grants[0].1, "Entra ID");
            // A verifier without a challenge is a downgrade.
            let plain = authorize(store, &client.id, None);
            assert_eq!(
                exchange(store, &client.id, &plain, Some(VERIFIER)),
                Err(GrantFailure::UnexpectedVerifier)
            );
            assert_eq!(
                exchange(store, &client.id, "unknown", None),
                Err(GrantFailure::Unknown)
            );
        }
    }

    #[test]
    fn expired_codes_are_refused() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let later = OffsetDateTime::now_utc() + time::Duration::seconds(61);
            let res = store
                .write(|c| exchange_code(c, &client.id, &code, Some(URI), None, later, lifetimes()))
                .unwrap();
            assert_eq!(res, Err(GrantFailure::Expired));
        }
    }

    #[test]
    fn refresh_tokens_rotate_and_reuse_revokes_the_grant() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let first = exchange(store, &client.id, &code, None).unwrap();
            let refresh_with = |token: &str, client_id: &str| {
                store
                    .write(|c| refresh(c, client_id, token, OffsetDateTime::now_utc(), lifetimes()))
                    .unwrap()
            };
            assert_eq!(
                refresh_with(&first.refresh_token, "other"),
                Err(GrantFailure::Unknown)
            );
            // An access token is not a refresh token.
            assert_eq!(
                refresh_with(&first.access_token, &client.id),
                Err(GrantFailure::Unknown)
            );
            let second = refresh_with(&first.refresh_token, &client.id).unwrap();
            assert_ne!(second.refresh_token, first.refresh_token);
            assert!(access_ok(store, &first.access_token));
            assert!(access_ok(store, &second.access_token));
            assert_eq!(
                refresh_with(&first.refresh_token, &client.id),
                Err(GrantFailure::RefreshReused)
            );
            assert!(!access_ok(store, &second.access_token));
            assert_eq!(
                refresh_with(&second.refresh_token, &client.id),
                Err(GrantFailure::Revoked)
            );
        }
    }

    #[test]
    fn expired_access_and_refresh_tokens_are_refused() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let short = TokenLifetimes {
                access: time::Duration::seconds(1),
                refresh: time::Duration::seconds(1),
            };
            let past = OffsetDateTime::now_utc() - time::Duration::seconds(5);
            let tokens = store
                .write(|c| exchange_code(c, &client.id, &code, Some(URI), None, past, short))
                .unwrap()
                .unwrap();
            assert!(!access_ok(store, &tokens.access_token));
            let res = store
                .write(|c| {
                    refresh(
                        c,
                        &client.id,
                        &tokens.refresh_token,
                        OffsetDateTime::now_utc(),
                        short,
                    )
                })
                .unwrap();
            assert_eq!(res, Err(GrantFailure::Expired));
            let purged = store
                .write(|c| purge_expired(c, &scim_core::datetime::now()))
                .unwrap();
            assert_eq!(
                purged, 2,
                "the access and refresh tokens (the code lives on)"
            );
        }
    }

    #[test]
    fn revocation_per_rfc_7009() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let now = scim_core::datetime::now();
            let code = authorize(store, &client.id, None);
            let a = exchange(store, &client.id, &code, None).unwrap();
            let revoke = |client_id: &str, token: &str| {
                store
                    .write(|c| revoke_token(c, client_id, token, &now))
                    .unwrap()
            };
            assert_eq!(revoke("other", &a.access_token), Revocation::OtherClient);
            assert!(access_ok(store, &a.access_token));
            assert_eq!(revoke(&client.id, &a.access_token), Revocation::AccessToken);
            assert!(!access_ok(store, &a.access_token));
            assert_eq!(revoke(&client.id, "nope"), Revocation::Unknown);
            let code = authorize(store, &client.id, None);
            let b = exchange(store, &client.id, &code, None).unwrap();
            assert_eq!(revoke(&client.id, &b.refresh_token), Revocation::Grant);
            assert!(!access_ok(store, &b.access_token));
            // Administrators revoke grants too.
            let code = authorize(store, &client.id, None);
            let c3 = exchange(store, &client.id, &code, None).unwrap();
            store
                .write(|c| revoke_grant(c, &c3.grant_id, "revoked by admin:root", &now))
                .unwrap();
            assert!(!access_ok(store, &c3.access_token));
            store
                .write(|c| revoke_grant(c, &c3.grant_id, "again", &now))
                .unwrap();
            let err = store
                .write(|c| revoke_grant(c, "nope", "x", &now))
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
        }
    }
}
