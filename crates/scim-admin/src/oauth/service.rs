//! OAuth operations shared by the admin API and the console: client
//! registration, rotation and deletion, grants, and the token endpoint's
//! rate limiting.

use actix_web::web;
use scim_store::admin::Admission;
use scim_store::{admin, oauth, Store};

use scim_store::changes::{Actor, Event};

use super::model::{ClientView, CreateClientRequest, CreatedClient, GrantView};
use crate::activity::record_event;
use crate::error::{AdminError, FieldError};
use crate::service::Guard;

/// The one scope: SCIM provisioning (the whole SCIM API).
pub const SCOPE_SCIM: &str = "scim";
/// Every scope this server knows, with what the consent page says.
pub const SCOPES: &[(&str, &str)] = &[(SCOPE_SCIM, "SCIM provisioning")];
/// Redirect URIs per client, at most.
const MAX_REDIRECT_URIS: usize = 10;

/// What the consent page calls `scope`.
pub fn scope_label(scope: &str) -> String {
    scope
        .split_whitespace()
        .map(|s| {
            SCOPES
                .iter()
                .find(|(id, _)| *id == s)
                .map_or(s, |(_, label)| *label)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `uri` cannot be a redirect URI, if it cannot (RFC 6749 §3.1.2:
/// absolute, no fragment; Security BCP §4.1: exact matching, so no
/// wildcards; TLS except for the loopback host).
pub fn check_redirect_uri(uri: &str) -> Option<String> {
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "{uri:?} must be at most 2000 characters without spaces"
        ));
    }
    if uri.contains('#') {
        return Some(format!("{uri:?} must not contain a fragment (#)"));
    }
    if uri.contains('*') {
        return Some(format!(
            "{uri:?}: wildcards are not allowed; redirect URIs are compared exactly"
        ));
    }
    let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        .iter()
        .any(|p| {
            uri.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
        });
    let host = uri
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?']).next().unwrap_or_default().to_owned());
    match host {
        Some(h) if !h.is_empty() && !h.contains('@') => None,
        _ if loopback => None,
        _ => Some(format!(
            "{uri:?} must be an absolute https:// URL (http:// only for localhost), e.g. https://portal.azure.com/TokenAuthorize"
        )),
    }
}

/// The `scheme://host[:port]` of an absolute URL.
pub fn origin_of(uri: &str) -> &str {
    let Some(start) = uri.find("://").map(|i| i + 3) else {
        return uri;
    };
    let end = uri[start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |i| start + i);
    &uri[..end]
}

fn client_view(c: oauth::ClientRecord) -> ClientView {
    ClientView {
        client_id: c.id,
        name: c.name,
        redirect_uris: c.redirect_uris,
        scopes: c.scopes,
        secret_prefix: c.secret_prefix,
        created_at: c.created_at,
        created_by: c.created_by,
        secret_rotated_at: c.secret_rotated_at,
    }
}

/// Registers a client after validating every field.
pub fn create_client(
    store: &Store,
    actor: &Actor,
    req: &CreateClientRequest,
) -> Result<CreatedClient, AdminError> {
    let mut errors = Vec::new();
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in req.redirect_uris.iter().map(|u| u.trim()) {
        if let Some(why) = check_redirect_uri(uri) {
            errors.push(FieldError::new("redirect_uris", why));
        } else if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
    }
    if req.redirect_uris.is_empty() {
        errors.push(FieldError::new(
            "redirect_uris",
            "at least one is required (Entra ID: https://portal.azure.com/TokenAuthorize)",
        ));
    } else if uris.len() > MAX_REDIRECT_URIS {
        errors.push(FieldError::new(
            "redirect_uris",
            format!("at most {MAX_REDIRECT_URIS}"),
        ));
    }
    let scopes = req
        .scopes
        .clone()
        .unwrap_or_else(|| vec![SCOPE_SCIM.to_owned()]);
    for s in &scopes {
        if !SCOPES.iter().any(|(id, _)| id == s) {
            errors.push(FieldError::new(
                "scopes",
                format!("unknown scope {s:?}; the only scope is \"{SCOPE_SCIM}\""),
            ));
        }
    }
    if scopes.is_empty() {
        errors.push(FieldError::new("scopes", "at least one scope"));
    }
    if !errors.is_empty() {
        return Err(AdminError::fields(errors));
    }
    let (client, secret) = store.write(|c| {
        let (client, secret) =
            oauth::create_client(c, actor.org, name, &uris, &scopes, &actor.label())?;
        record_event(
            c,
            actor,
            Event::OauthClientCreated,
            "OauthClient",
            Some(&client.id),
            serde_json::json!({
                "name": client.name,
                "redirect_uris": client.redirect_uris,
                "scopes": client.scopes,
            }),
        )?;
        Ok((client, secret))
    })?;
    Ok(CreatedClient {
        client: client_view(client),
        client_secret: secret,
    })
}

/// Every client of the organization, oldest first.
pub fn list_clients(store: &Store, org: scim_store::OrgId) -> Result<Vec<ClientView>, AdminError> {
    Ok(store
        .read(|c| oauth::list_clients(c, org))?
        .into_iter()
        .map(client_view)
        .collect())
}

fn no_client(id: &str) -> impl Fn(scim_store::StoreError) -> AdminError + '_ {
    move |e| match e {
        scim_store::StoreError::NotFound => {
            AdminError::NotFound(format!("no OAuth client with client_id {id:?}"))
        }
        other => other.into(),
    }
}

/// A new secret for client `id` of the actor's organization (the old one
/// stops working at once); another organization's client is not found.
pub fn rotate_client_secret(
    store: &Store,
    actor: &Actor,
    id: &str,
) -> Result<CreatedClient, AdminError> {
    let (client, secret) = store
        .write(|c| {
            let (client, secret) = oauth::rotate_client_secret(c, actor.org, id)?;
            record_event(
                c,
                actor,
                Event::OauthClientChanged,
                "OauthClient",
                Some(id),
                serde_json::json!({ "name": client.name, "secret_rotated": true }),
            )?;
            Ok((client, secret))
        })
        .map_err(no_client(id))?;
    Ok(CreatedClient {
        client: client_view(client),
        client_secret: secret,
    })
}

/// Deletes client `id` of the actor's organization and everything issued
/// to it; another organization's client is not found.
pub fn delete_client(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| {
            let name = oauth::find_client(c, id)?.map(|client| client.name);
            oauth::delete_client(c, actor.org, id)?;
            record_event(
                c,
                actor,
                Event::OauthClientDeleted,
                "OauthClient",
                Some(id),
                serde_json::json!({ "name": name }),
            )
        })
        .map_err(no_client(id))
}

/// Every grant to a client of the organization `org`, newest first.
pub fn list_grants(store: &Store, org: scim_store::OrgId) -> Result<Vec<GrantView>, AdminError> {
    Ok(store
        .read(|c| oauth::list_grants(c, org))?
        .into_iter()
        .map(|(g, client_name)| GrantView {
            state: if g.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            }
            .to_owned(),
            id: g.id,
            client_id: g.client_id,
            client_name,
            approved_by: g.admin_username,
            scope: g.scope,
            created_at: g.created_at,
            last_used_at: g.last_used_at,
            revoked_at: g.revoked_at,
            revoked_reason: g.revoked_reason,
        })
        .collect())
}

/// Revokes grant `id` of a client of the actor's organization (another
/// organization's grant is not found): its tokens stop working (replicas
/// that cached an access token accept it for at most
/// `auth.token_cache_ttl_secs` more).
pub fn revoke_grant(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    let now = scim_core::datetime::now();
    store
        .write(|c| {
            // The grant as it was: revoking a revoked grant records nothing.
            let before = oauth::list_grants(c, actor.org)?
                .into_iter()
                .find(|(g, _)| g.id == id);
            if before.is_none() {
                return Err(scim_store::StoreError::NotFound);
            }
            oauth::revoke_grant(c, id, &format!("revoked by {}", actor.label()), &now)?;
            match before {
                Some((g, client_name)) if g.revoked_at.is_none() => record_event(
                    c,
                    actor,
                    Event::OauthGrantRevoked,
                    "OauthGrant",
                    Some(id),
                    serde_json::json!({ "client_id": g.client_id, "client_name": client_name }),
                ),
                _ => Ok(()),
            }
        })
        .map_err(|e| match e {
            scim_store::StoreError::NotFound => {
                AdminError::NotFound(format!("no OAuth grant with id {id:?}"))
            }
            other => other.into(),
        })
}

// ---------------------------------------------------------------- rate limiting

fn account(client_id: &str) -> String {
    // Bounded, so an attacker cannot store long strings.
    let id: String = client_id.chars().take(64).collect();
    format!("oauth-client:{id}")
}

/// The address key of token requests: apart from administrators' sign-in,
/// so a client's failures never slow an administrator down.
pub fn address_key(address: &str) -> String {
    format!("oauth:{address}")
}

/// Authenticates client `client_id` with `secret` (RFC 6749 §2.3.1),
/// limited per (client, address): the attempt is counted before the
/// secret is compared, 429 when the limits refuse it. `None` for an
/// unknown client or a wrong secret. `guard.address` is the
/// [`address_key`].
pub async fn authenticate_client(
    guard: &Guard,
    client_id: &str,
    secret: &str,
) -> Result<Option<oauth::ClientRecord>, AdminError> {
    let (credential, address, limits, now) = (
        account(client_id),
        guard.address.clone(),
        guard.limits,
        guard.now,
    );
    let (id, secret) = (client_id.to_owned(), secret.to_owned());
    let store = guard.store.clone();
    web::block(move || -> Result<_, AdminError> {
        let admission =
            store.write(|c| admin::reserve_attempt(c, &credential, &address, now, &limits))?;
        let attempt = match admission {
            Admission::Admitted(attempt) => attempt,
            Admission::Refused { retry_after_secs } => {
                return Err(AdminError::TooManyRequests { retry_after_secs })
            }
        };
        let client = store.read(|c| oauth::authenticate_client(c, &id, &secret))?;
        if client.is_some() {
            store.write(|c| admin::succeed_attempt(c, &attempt))?;
        }
        Ok(client)
    })
    .await?
}

/// Counts a failed token request of an authenticated client (an invalid
/// code or refresh token) against (client, `address_key`).
pub fn record_token_failure(
    store: &Store,
    client_id: &str,
    address_key: &str,
    now: time::OffsetDateTime,
) -> Result<(), AdminError> {
    store.write(|c| admin::record_failure(c, &account(client_id), address_key, now))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use scim_store::testing::backends;

    #[test]
    fn redirect_uris_are_absolute_https_without_fragment() {
        for ok in [
            "https://portal.azure.com/TokenAuthorize",
            "https://idp.example.com/cb?tenant=1",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
        ] {
            assert_eq!(check_redirect_uri(ok), None, "{ok}");
        }
        for bad in [
            "http://portal.azure.com/TokenAuthorize",
            "https://x.example/cb#frag",
            "https://*.example/cb",
            "/relative",
            "https://",
            "https://user@evil.example/",
            "http://localhost.evil.example/",
            "https://a b",
            "javascript:alert(1)",
        ] {
            assert!(check_redirect_uri(bad).is_some(), "{bad}");
        }
        assert_eq!(
            origin_of("https://portal.azure.com/TokenAuthorize?x"),
            "https://portal.azure.com"
        );
        assert_eq!(origin_of("http://localhost:8080"), "http://localhost:8080");
        assert_eq!(scope_label("scim"), "SCIM provisioning");
    }

    #[test]
    fn clients_validate_every_field() {
        for db in backends() {
            let store = db.store();
            let err = create_client(
                store,
                &Actor::cli("root"),
                &CreateClientRequest {
                    name: " ".into(),
                    redirect_uris: vec!["http://evil.example/".into()],
                    scopes: Some(vec!["openid".into()]),
                },
            )
            .unwrap_err();
            let fields: Vec<_> = err.body().fields.into_iter().map(|f| f.field).collect();
            assert_eq!(fields, ["name", "redirect_uris", "scopes"]);
            let created = create_client(
                store,
                &Actor::cli("root"),
                &CreateClientRequest {
                    name: "Entra ID".into(),
                    redirect_uris: vec!["https://portal.azure.com/TokenAuthorize".into()],
                    scopes: None,
                },
            )
            .unwrap();
            assert_eq!(created.client.scopes, vec!["scim".to_owned()]);
            assert_eq!(
                list_clients(store, scim_store::OrgId::DEFAULT).unwrap(),
                vec![created.client.clone()]
            );
            let rotated =
                rotate_client_secret(store, &Actor::cli("t"), &created.client.client_id).unwrap();
            assert_ne!(rotated.client_secret, created.client_secret);
            assert!(matches!(
                rotate_client_secret(store, &Actor::cli("t"), "nope"),
                Err(AdminError::NotFound(_))
            ));
            delete_client(store, &Actor::cli("t"), &created.client.client_id).unwrap();
            assert!(matches!(
                delete_client(store, &Actor::cli("t"), &created.client.client_id),
                Err(AdminError::NotFound(_))
            ));
            assert!(matches!(
                revoke_grant(store, &Actor::cli("root"), "nope"),
                Err(AdminError::NotFound(_))
            ));
        }
    }

    /// Ten wrong client secrets from ten addresses do not stop the real
    /// client, from its own address, with the right secret.
    #[actix_web::test]
    async fn wrong_secrets_from_many_addresses_do_not_lock_the_client_out() {
        for db in backends() {
            let store = db.store();
            let created = create_client(
                store,
                &Actor::cli("root"),
                &CreateClientRequest {
                    name: "Entra ID".into(),
                    redirect_uris: vec!["https://portal.azure.com/TokenAuthorize".into()],
                    scopes: None,
                },
            )
            .unwrap();
            let id = created.client.client_id.clone();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let g = |address: &str, at: i64| Guard {
                store: store.clone(),
                hasher: scim_store::PasswordHasher::default(),
                address: address_key(address),
                request_id: None,
                limits: crate::service::AttemptLimits {
                    max_failures: 2,
                    window: time::Duration::minutes(5),
                    address_max_failures: 0,
                    slow_after: 5,
                    max_delay: time::Duration::minutes(1),
                },
                now: t0 + time::Duration::seconds(at),
            };
            for i in 0..10 {
                let got = authenticate_client(&g(&format!("203.0.113.{i}"), 0), &id, "wrong")
                    .await
                    .unwrap();
                assert_eq!(got, None);
            }
            // The attackers' addresses are slowed…
            assert!(matches!(
                authenticate_client(&g("203.0.113.1", 1), &id, "wrong").await,
                Err(AdminError::TooManyRequests { .. })
            ));
            // …the real client from its own address is not.
            let got = authenticate_client(&g("192.0.2.10", 1), &id, &created.client_secret)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.id, id);
            // A pair that failed twice is refused, whoever else fails.
            record_token_failure(store, &id, &address_key("192.0.2.20"), t0).unwrap();
            record_token_failure(store, &id, &address_key("192.0.2.20"), t0).unwrap();
            assert!(matches!(
                authenticate_client(&g("192.0.2.20", 600), &id, &created.client_secret).await,
                Ok(Some(_))
            ));
            record_token_failure(store, &id, &address_key("192.0.2.30"), t0).unwrap();
            record_token_failure(store, &id, &address_key("192.0.2.30"), t0).unwrap();
            assert!(matches!(
                authenticate_client(&g("192.0.2.30", 1), &id, &created.client_secret).await,
                Err(AdminError::TooManyRequests {
                    retry_after_secs: 299
                })
            ));
            // Administrators' sign-in from the same address is not affected.
            let admin = crate::service::Guard {
                address: "203.0.113.1".into(),
                ..g("x", 1)
            };
            assert!(matches!(
                crate::service::login(&admin, "root", "x", time::Duration::hours(1)).await,
                Err(AdminError::Unauthorized(_))
            ));
        }
    }
}
