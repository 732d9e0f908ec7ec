//! OAuth operations shared by the admin API and the console: client
//! registration, rotation and deletion, grants, and the token endpoint's
//! rate limiting.

use scim_store::{admin, oauth, Store};

use super::model::{ClientView, CreateClientRequest, CreatedClient, GrantView};
use crate::error::{AdminError, FieldError};
use crate::service::LoginLimits;

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
    actor: &str,
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
    let (client, secret) = store.write(|c| oauth::create_client(c, name, &uris, &scopes, actor))?;
    Ok(CreatedClient {
        client: client_view(client),
        client_secret: secret,
    })
}

/// Every client, oldest first.
pub fn list_clients(store: &Store) -> Result<Vec<ClientView>, AdminError> {
    Ok(store
        .read(oauth::list_clients)?
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

/// A new secret for client `id` (the old one stops working at once).
pub fn rotate_client_secret(store: &Store, id: &str) -> Result<CreatedClient, AdminError> {
    let (client, secret) = store
        .write(|c| oauth::rotate_client_secret(c, id))
        .map_err(no_client(id))?;
    Ok(CreatedClient {
        client: client_view(client),
        client_secret: secret,
    })
}

/// Deletes client `id` and everything issued to it.
pub fn delete_client(store: &Store, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| oauth::delete_client(c, id))
        .map_err(no_client(id))
}

/// Every grant, newest first.
pub fn list_grants(store: &Store) -> Result<Vec<GrantView>, AdminError> {
    Ok(store
        .read(oauth::list_grants)?
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

/// Revokes grant `id`: its tokens stop working (replicas that cached an
/// access token accept it for at most `auth.token_cache_ttl_secs` more).
pub fn revoke_grant(store: &Store, actor: &str, id: &str) -> Result<(), AdminError> {
    let now = scim_core::datetime::now();
    store
        .write(|c| oauth::revoke_grant(c, id, &format!("revoked by {actor}"), &now))
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

fn address_key(address: &str) -> String {
    format!("oauth:{address}")
}

/// `Err(TooManyRequests)` when client `client_id` or `address` had
/// `limits.max_failures` failed token requests within `limits.window`.
/// Failures are kept in the login limiter's table (shared by replicas),
/// under keys of their own, so they never lock an administrator out.
pub fn check_token_rate(
    store: &Store,
    client_id: &str,
    address: &str,
    limits: LoginLimits,
) -> Result<(), AdminError> {
    let since = scim_core::datetime::format(time::OffsetDateTime::now_utc() - limits.window);
    let (by_client, by_address) = store.read(|c| {
        admin::recent_login_failures(c, &account(client_id), &address_key(address), &since)
    })?;
    if by_client >= limits.max_failures || by_address >= limits.max_failures {
        return Err(AdminError::TooManyRequests {
            retry_after_secs: limits.window.whole_seconds().max(1).unsigned_abs(),
        });
    }
    Ok(())
}

/// Records a failed token request (wrong client credentials, or an
/// invalid code or refresh token). `keep` is how long attempts are kept
/// (the longest window of the login and token limiters).
pub fn record_token_failure(
    store: &Store,
    client_id: &str,
    address: &str,
    keep: time::Duration,
) -> Result<(), AdminError> {
    let now = time::OffsetDateTime::now_utc();
    let forget_before = scim_core::datetime::format(now - keep);
    store.write(|c| {
        admin::record_login_attempt(
            c,
            &account(client_id),
            &address_key(address),
            false,
            &scim_core::datetime::format(now),
            &forget_before,
        )
    })?;
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
                "admin:root",
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
                "admin:root",
                &CreateClientRequest {
                    name: "Entra ID".into(),
                    redirect_uris: vec!["https://portal.azure.com/TokenAuthorize".into()],
                    scopes: None,
                },
            )
            .unwrap();
            assert_eq!(created.client.scopes, vec!["scim".to_owned()]);
            assert_eq!(list_clients(store).unwrap(), vec![created.client.clone()]);
            let rotated = rotate_client_secret(store, &created.client.client_id).unwrap();
            assert_ne!(rotated.client_secret, created.client_secret);
            assert!(matches!(
                rotate_client_secret(store, "nope"),
                Err(AdminError::NotFound(_))
            ));
            delete_client(store, &created.client.client_id).unwrap();
            assert!(matches!(
                delete_client(store, &created.client.client_id),
                Err(AdminError::NotFound(_))
            ));
            assert!(matches!(
                revoke_grant(store, "admin:root", "nope"),
                Err(AdminError::NotFound(_))
            ));
        }
    }

    #[test]
    fn token_failures_are_limited_per_client_and_address() {
        for db in backends() {
            let store = db.store();
            let limits = LoginLimits {
                max_failures: 2,
                window: time::Duration::minutes(5),
            };
            let keep = time::Duration::minutes(15);
            check_token_rate(store, "c1", "a1", limits).unwrap();
            record_token_failure(store, "c1", "a1", keep).unwrap();
            record_token_failure(store, "c1", "a2", keep).unwrap();
            // The client is limited from anywhere…
            assert!(matches!(
                check_token_rate(store, "c1", "a3", limits),
                Err(AdminError::TooManyRequests {
                    retry_after_secs: 300
                })
            ));
            check_token_rate(store, "c2", "a3", limits).unwrap();
            record_token_failure(store, "c2", "a3", keep).unwrap();
            record_token_failure(store, "c3", "a3", keep).unwrap();
            // …and the address for every client.
            assert!(check_token_rate(store, "c4", "a3", limits).is_err());
            // Administrators' sign-in from the same address is not affected.
            let (_, by_address) = store
                .read(|c| admin::recent_login_failures(c, "root", "a3", "2000-01-01T00:00:00Z"))
                .unwrap();
            assert_eq!(by_address, 0);
        }
    }
}
