//! The change log names the command line by the operating-system user
//! who ran it: a real `scimd token create` / `scimd token revoke` writes
//! `cli` rows carrying the login name (`$USER`, else `$LOGNAME`), and no
//! row carries the token's secret.

use std::time::Duration;

use scim_store::changes::Change;

use super::{databases, run, scimd};

fn rows(url: &str) -> Vec<Change> {
    let store = scim_store::Store::connect(&scim_store::StoreConfig {
        url: url.to_owned(),
        pool_size: 1,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    store
        .read(|c| scim_store::changes::read_after(c, 0, 1000))
        .unwrap()
}

fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn the_cli_is_recorded_as_the_operating_system_user() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        // `$USER` first (`$LOGNAME` is only the fallback).
        let stdout = succeeded(&run(scimd(&url)
            .env("USER", "ops-alice")
            .env("LOGNAME", "not-alice")
            .args(["token", "create", "--name", "Entra ID"])));
        let secret = stdout
            .lines()
            .find(|l| l.starts_with("scimd_"))
            .expect("secret printed")
            .to_owned();
        let id = stdout
            .split_whitespace()
            .nth(2)
            .expect("id printed")
            .to_owned();
        // Without `$USER`, `$LOGNAME`.
        succeeded(&run(scimd(&url)
            .env("LOGNAME", "ops-bob")
            .args(["token", "revoke", &id])));

        let rows = rows(&url);
        let of = |event: &str| -> &Change {
            let found: Vec<&Change> = rows
                .iter()
                .filter(|r| r.event == event && r.resource_id.as_deref() == Some(id.as_str()))
                .collect();
            assert_eq!(found.len(), 1, "{url}: {event}: {rows:?}");
            found[0]
        };
        for (event, user) in [
            ("scim_token.created", "ops-alice"),
            ("scim_token.revoked", "ops-bob"),
        ] {
            let row = of(event);
            assert_eq!(row.actor_kind, "cli", "{url}: {row:?}");
            assert_eq!(row.actor_name.as_deref(), Some(user), "{url}: {row:?}");
            assert_eq!(row.actor_id, None, "{url}: {row:?}");
            assert_eq!(row.request_id, None, "{url}: {row:?}");
            assert_eq!(row.client_address, None, "{url}: {row:?}");
            assert_eq!(row.resource_type, "ScimToken", "{url}: {row:?}");
        }
        let created: serde_json::Value =
            serde_json::from_str(&of("scim_token.created").detail).unwrap();
        assert_eq!(created["name"], "Entra ID", "{url}: {created}");

        // No row holds the secret, nor its part past the listed prefix.
        let out = succeeded(&run(scimd(&url).args(["token", "list", "--json"])));
        let tokens: serde_json::Value = serde_json::from_str(&out).unwrap();
        let token = tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .expect("the token is listed");
        assert_eq!(token["created_by"], "cli:ops-alice", "{url}: {token}");
        let prefix = token["prefix"].as_str().unwrap();
        assert!(secret.starts_with(prefix), "{prefix} {secret}");
        let hidden = &secret[prefix.len()..];
        assert!(hidden.len() >= 16, "{secret}");
        for row in &rows {
            let text = format!("{row:?}");
            assert!(
                !text.contains(&secret) && !text.contains(hidden),
                "{url}: the secret reached the change log: {row:?}"
            );
        }
    }
}
