//! Administrators through the admin API (both backends): management, the
//! last enabled administrator, passwords, and sign-in limits behind a
//! simulated reverse proxy (`trust_forwarded_for` both ways).

use actix_web::http::Method;
use scim_admin::AdminConfig;
use scim_store::testing::backends;
use serde_json::{json, Value};

use super::{assert_error, cookie_value, create_root, field_names, Auth, Res, TestApp, PASSWORD};

const BOB_PASSWORD: &str = "bob's long passphrase";
const SESSION: &str = "/admin/api/v1/session";

impl TestApp {
    async fn post(&self, path: &str, auth: &Auth, body: Option<Value>) -> Res {
        self.send(Method::POST, path, auth, body).await
    }

    async fn sign_in_as(&self, username: &str, password: &str) -> Res {
        self.send(
            Method::POST,
            SESSION,
            &Auth::None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }
}

fn session_of(res: &Res) -> Auth {
    assert_eq!(res.status, 200, "{}", res.body);
    Auth::Session {
        cookie: cookie_value(res).unwrap(),
        csrf: Some(res.body["csrf_token"].as_str().unwrap().to_owned()),
    }
}

fn id_of(list: &Value, username: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == username)
        .unwrap_or_else(|| panic!("{username} not in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn administrators_are_managed_and_the_last_one_stays() {
    for db in backends() {
        let app = TestApp::new(db);
        let root = app.signed_in().await;
        // Create: validated, unique case-insensitively.
        let res = app
            .post(
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "bob", "password": BOB_PASSWORD})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["state"], "enabled");
        let bob_id = res.body["id"].as_str().unwrap().to_owned();
        let res = app
            .post(
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "BOB", "password": "short"})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(field_names(&res), ["password"]);
        let res = app
            .post(
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "BOB", "password": BOB_PASSWORD})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(field_names(&res), ["username"]);
        let list = app
            .send(Method::GET, "/admin/api/v1/admins", &root, None)
            .await;
        assert_eq!(list.status, 200);
        assert_eq!(list.body.as_array().unwrap().len(), 2);
        let root_id = id_of(&list.body, "root");

        // bob signs in and mints an admin API token.
        let bob = session_of(&app.sign_in_as("bob", BOB_PASSWORD).await);
        let res = app
            .post(
                "/admin/api/v1/admin-tokens",
                &bob,
                Some(json!({"name": "bob's automation"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let bob_token = Auth::Bearer(res.body["secret"].as_str().unwrap().to_owned());

        // Disabled: the session and the token stop working, signing in is
        // refused (403 only with the right password).
        let res = app
            .post(
                &format!("/admin/api/v1/admins/{bob_id}/disable"),
                &root,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["state"], "disabled");
        assert!(res.body["disabled_at"].is_string());
        let res = app.send(Method::GET, SESSION, &bob, None).await;
        assert_error(&res, 401, "unauthorized");
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &bob_token, None)
            .await;
        assert_error(&res, 401, "unauthorized");
        let res = app.sign_in_as("bob", BOB_PASSWORD).await;
        assert_error(&res, 403, "forbidden");
        assert!(res.body["message"].as_str().unwrap().contains("disabled"));
        let res = app.sign_in_as("bob", "not bob's password").await;
        assert_error(&res, 401, "unauthorized");

        // root is now the last enabled administrator.
        for res in [
            app.post(
                &format!("/admin/api/v1/admins/{root_id}/disable"),
                &root,
                None,
            )
            .await,
            app.send(
                Method::DELETE,
                &format!("/admin/api/v1/admins/{root_id}"),
                &root,
                None,
            )
            .await,
        ] {
            assert_error(&res, 409, "conflict");
            assert!(
                res.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("last enabled administrator"),
                "{}",
                res.body
            );
        }

        // Enabled again, bob signs in again; the old token stays revoked.
        let res = app
            .post(
                &format!("/admin/api/v1/admins/{bob_id}/enable"),
                &root,
                None,
            )
            .await;
        assert_eq!(res.body["state"], "enabled", "{}", res.body);
        let bob = session_of(&app.sign_in_as("bob", BOB_PASSWORD).await);

        // Reset by another administrator: bob's sessions end.
        let res = app
            .post(
                &format!("/admin/api/v1/admins/{bob_id}/password"),
                &root,
                Some(json!({"password": "a brand new passphrase"})),
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        assert_error(
            &app.send(Method::GET, SESSION, &bob, None).await,
            401,
            "unauthorized",
        );
        assert_error(
            &app.sign_in_as("bob", BOB_PASSWORD).await,
            401,
            "unauthorized",
        );
        let bob = session_of(&app.sign_in_as("bob", "a brand new passphrase").await);
        // Not your own: that needs the current password.
        let res = app
            .post(
                &format!("/admin/api/v1/admins/{root_id}/password"),
                &root,
                Some(json!({"password": "a brand new passphrase"})),
            )
            .await;
        assert_error(&res, 403, "forbidden");

        // Your own password: the current one is checked; your other
        // sessions end, this one stays.
        let root2 = session_of(&app.sign_in_as("root", PASSWORD).await);
        let change =
            |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        let res = app
            .post(
                "/admin/api/v1/session/password",
                &root,
                Some(change("wrong password!", "the next root passphrase")),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(field_names(&res), ["current_password"]);
        let res = app
            .post(
                "/admin/api/v1/session/password",
                &root,
                Some(change(PASSWORD, "short")),
            )
            .await;
        assert_eq!(field_names(&res), ["new_password"]);
        let res = app
            .post(
                "/admin/api/v1/session/password",
                &root,
                Some(change(PASSWORD, "the next root passphrase")),
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        assert_eq!(
            app.send(Method::GET, SESSION, &root, None).await.status,
            200
        );
        assert_error(
            &app.send(Method::GET, SESSION, &root2, None).await,
            401,
            "unauthorized",
        );
        session_of(&app.sign_in_as("root", "the next root passphrase").await);
        // An admin API token has no password of its own.
        let res = app
            .post(
                "/admin/api/v1/admin-tokens",
                &root,
                Some(json!({"name": "root's"})),
            )
            .await;
        let token = Auth::Bearer(res.body["secret"].as_str().unwrap().to_owned());
        let res = app
            .post(
                "/admin/api/v1/session/password",
                &token,
                Some(change("the next root passphrase", "whatever it would be")),
            )
            .await;
        assert_error(&res, 401, "unauthorized");

        // Unknown ids are 404 everywhere.
        for (method, path, body) in [
            (Method::POST, "/admin/api/v1/admins/nope/disable", None),
            (Method::POST, "/admin/api/v1/admins/nope/enable", None),
            (Method::POST, "/admin/api/v1/admins/nope/unlock", None),
            (Method::DELETE, "/admin/api/v1/admins/nope", None),
            (
                Method::POST,
                "/admin/api/v1/admins/nope/password",
                Some(json!({"password": "a brand new passphrase"})),
            ),
        ] {
            let res = app.send(method, path, &root, body).await;
            assert_error(&res, 404, "not_found");
        }

        // bob deletes root (allowed: bob stays enabled); root's session ends.
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admins/{root_id}"),
                &bob,
                None,
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        assert_error(
            &app.send(Method::GET, SESSION, &root, None).await,
            401,
            "unauthorized",
        );
        let list = app
            .send(Method::GET, "/admin/api/v1/admins", &bob, None)
            .await;
        assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.body);
    }
}

/// The app behind a simulated reverse proxy at 10.0.0.1: every request
/// comes from that peer, with the client's address in X-Forwarded-For.
fn behind_proxy(db: scim_store::testing::TestDb, trust: bool) -> TestApp {
    TestApp::with_config(db, |c: &mut AdminConfig| {
        c.trust_forwarded_for = trust;
        c.login_limits.address_max_failures = 8;
    })
}

impl TestApp {
    /// A sign-in through the proxy; `forwarded` is the X-Forwarded-For
    /// header as the proxy passes it on (what the client sent, then the
    /// address the proxy saw).
    async fn sign_in_via(&self, forwarded: &str, username: &str, password: &str) -> Res {
        let forwarded = forwarded.to_owned();
        self.send_with(
            Method::POST,
            SESSION,
            &Auth::None,
            Some(json!({"username": username, "password": password})),
            move |r| {
                r.peer_addr("10.0.0.1:50000".parse().unwrap())
                    .insert_header(("X-Forwarded-For", forwarded))
            },
        )
        .await
    }
}

/// With `trust_forwarded_for`, X-Forwarded-For decides the address (its
/// last entry, which the proxy appended: a forged earlier entry changes
/// nothing). One attacker hammering `root` locks `root` out from the
/// attacker's address only; alice signs in from her own address and from
/// the attacker's. Spraying reaches the address cap: accounts that signed
/// in from there before still get in, the others are unlocked by an
/// administrator, by the CLI's function, or by the window passing.
#[actix_web::test]
async fn sign_in_limits_behind_a_trusted_proxy_never_lock_everyone_out() {
    for db in backends() {
        let app = behind_proxy(db, true);
        create_root(&app).await;
        scim_admin::service::create_admin(
            app.db.store(),
            &app.api.config().password_hasher,
            "alice",
            PASSWORD,
        )
        .await
        .unwrap();
        const ATTACKER: &str = "203.0.113.9";
        // alice signed in once from the address the attacker shares.
        session_of(&app.sign_in_via(ATTACKER, "alice", PASSWORD).await);
        for _ in 0..5 {
            let res = app.sign_in_via(ATTACKER, "root", "guess guess guess").await;
            assert_error(&res, 401, "unauthorized");
        }
        // root is locked out from there, even with the right password, and
        // a forged first entry does not make it another address.
        let res = app.sign_in_via(ATTACKER, "root", PASSWORD).await;
        assert_error(&res, 429, "too_many_requests");
        let res = app
            .sign_in_via(&format!("198.51.100.77, {ATTACKER}"), "root", PASSWORD)
            .await;
        assert_error(&res, 429, "too_many_requests");
        // root from its own address, alice from hers and from the
        // attacker's: all signed in.
        session_of(&app.sign_in_via("198.51.100.10", "root", PASSWORD).await);
        session_of(&app.sign_in_via("198.51.100.20", "alice", PASSWORD).await);
        let alice = session_of(&app.sign_in_via(ATTACKER, "alice", PASSWORD).await);

        // Spraying other names reaches the address cap (8).
        for i in 0..3 {
            let res = app
                .sign_in_via(ATTACKER, &format!("u{i}"), "guess guess guess")
                .await;
            assert_error(&res, 401, "unauthorized");
        }
        // bob never signed in from there: refused; alice has: admitted.
        scim_admin::service::create_admin(
            app.db.store(),
            &app.api.config().password_hasher,
            "bob",
            PASSWORD,
        )
        .await
        .unwrap();
        let res = app.sign_in_via(ATTACKER, "bob", PASSWORD).await;
        assert_error(&res, 429, "too_many_requests");
        session_of(&app.sign_in_via(ATTACKER, "alice", PASSWORD).await);

        // alice unlocks root: root's failures are forgotten (which also
        // takes the address below the cap).
        let list = app
            .send(Method::GET, "/admin/api/v1/admins", &alice, None)
            .await;
        let root = list
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["username"] == "root")
            .unwrap()
            .clone();
        assert_eq!(root["recent_failures"], 5, "{root}");
        assert_eq!(root["locked_from"], json!([ATTACKER]));
        let res = app
            .send(
                Method::POST,
                &format!(
                    "/admin/api/v1/admins/{}/unlock",
                    root["id"].as_str().unwrap()
                ),
                &alice,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["recent_failures"], 0);
        assert_eq!(res.body["locked_from"], json!([]));
        session_of(&app.sign_in_via(ATTACKER, "root", PASSWORD).await);

        // The cap again; the CLI's unlock of the address lifts it.
        for i in 0..5 {
            let res = app
                .sign_in_via(ATTACKER, &format!("v{i}"), "guess guess guess")
                .await;
            assert_error(&res, 401, "unauthorized");
        }
        assert_error(
            &app.sign_in_via(ATTACKER, "bob", PASSWORD).await,
            429,
            "too_many_requests",
        );
        let cleared =
            scim_admin::admins::service::unlock_address(app.db.store(), "cli:test", ATTACKER)
                .unwrap();
        assert_eq!(cleared, 8);
        session_of(&app.sign_in_via(ATTACKER, "bob", PASSWORD).await);

        // Or the window passes (the injected clock, no waiting).
        for _ in 0..5 {
            app.sign_in_via(ATTACKER, "root", "guess guess guess").await;
        }
        assert_error(
            &app.sign_in_via(ATTACKER, "root", PASSWORD).await,
            429,
            "too_many_requests",
        );
        app.api
            .config()
            .clock
            .advance(std::time::Duration::from_secs(15 * 60 + 1));
        session_of(&app.sign_in_via(ATTACKER, "root", PASSWORD).await);
    }
}

/// Without `trust_forwarded_for`, the peer (the proxy) is the address:
/// X-Forwarded-For, forged or not, changes nothing. Failures at `root`
/// through the proxy lock `root` out through the proxy, and no one else.
#[actix_web::test]
async fn sign_in_limits_without_trust_key_on_the_peer() {
    for db in backends() {
        let app = behind_proxy(db, false);
        create_root(&app).await;
        scim_admin::service::create_admin(
            app.db.store(),
            &app.api.config().password_hasher,
            "alice",
            PASSWORD,
        )
        .await
        .unwrap();
        for i in 0..5 {
            // A different made-up address each time.
            let res = app
                .sign_in_via(&format!("203.0.113.{i}"), "root", "guess guess guess")
                .await;
            assert_error(&res, 401, "unauthorized");
        }
        let res = app.sign_in_via("198.51.100.10", "root", PASSWORD).await;
        assert_error(&res, 429, "too_many_requests");
        // alice, through the same proxy, signs in.
        session_of(&app.sign_in_via("198.51.100.20", "alice", PASSWORD).await);
        // root from another peer (not through the proxy) signs in.
        let res = app
            .send_with(
                Method::POST,
                SESSION,
                &Auth::None,
                Some(json!({"username": "root", "password": PASSWORD})),
                |r| r.peer_addr("192.0.2.99:40000".parse().unwrap()),
            )
            .await;
        session_of(&res);
    }
}
