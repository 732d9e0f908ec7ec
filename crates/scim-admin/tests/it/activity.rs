//! The change log's admin side over HTTP, on both backends: admin events
//! recorded with the right actor (API and console), a failed sign-in
//! recorded, no secret in any row, the Activity API's filters and paging,
//! the timelines and the console's Activity page.

use actix_web::http::{header, Method};
use scim_store::changes::{self, Actor, ActorKind, Event, NewChange};
use scim_store::testing::backends;
use serde_json::{json, Value};

use super::{assert_error, cookie_value, create_root, field_names, Auth, TestApp, PASSWORD, PEM};

/// Every row of the change log, oldest first.
fn rows(app: &TestApp) -> Vec<changes::Change> {
    app.db
        .store()
        .read(|c| changes::read_after(c, 0, 10_000))
        .unwrap()
}

/// The rows of `event`.
fn of(app: &TestApp, event: Event) -> Vec<changes::Change> {
    rows(app)
        .into_iter()
        .filter(|c| c.event == event.as_str())
        .collect()
}

/// `auth` with the request id `id` sent along.
fn with_id(
    id: &'static str,
) -> impl FnOnce(actix_web::test::TestRequest) -> actix_web::test::TestRequest {
    move |r| r.insert_header(("X-Request-Id", id))
}

#[actix_web::test]
async fn admin_events_name_their_actor_and_never_a_secret() {
    for db in backends() {
        let app = TestApp::new(db);
        let backend = app.db.backend();
        create_root(&app).await;
        let created = of(&app, Event::AdminCreated);
        assert_eq!(created.len(), 1, "{backend}");
        assert_eq!(created[0].actor_kind, "cli");
        assert_eq!(created[0].actor_name.as_deref(), Some("test"));
        let root_id = created[0].resource_id.clone().unwrap();

        // A failed sign-in: recorded though the request fails.
        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(json!({"username": "root", "password": "not the password"})),
                with_id("req-failed"),
            )
            .await;
        assert_eq!(res.status, 401);
        let failed = of(&app, Event::AdminSignInFailed);
        assert_eq!(failed.len(), 1, "{backend}");
        assert_eq!(failed[0].actor_kind, "anonymous");
        assert_eq!(failed[0].actor_name.as_deref(), Some("root"));
        assert_eq!(failed[0].request_id.as_deref(), Some("req-failed"));
        assert_eq!(failed[0].client_address.as_deref(), Some("192.0.2.1"));
        assert!(!failed[0].detail.contains("not the password"));

        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/session",
                &Auth::None,
                Some(json!({"username": "root", "password": PASSWORD})),
                with_id("req-in"),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let csrf = res.body["csrf_token"].as_str().unwrap().to_owned();
        let cookie = cookie_value(&res).unwrap();
        let session = Auth::Session {
            cookie: cookie.clone(),
            csrf: Some(csrf.clone()),
        };
        let signed = of(&app, Event::AdminSignedIn);
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].actor_kind, "admin");
        assert_eq!(signed[0].actor_id.as_deref(), Some(root_id.as_str()));
        assert_eq!(signed[0].request_id.as_deref(), Some("req-in"));

        // Tokens, by the administrator, then by an admin API token.
        let scim = app
            .send_with(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &session,
                Some(json!({"name": "Entra ID"})),
                with_id("req-scim"),
            )
            .await;
        assert_eq!(scim.status, 201, "{}", scim.body);
        let scim_id = scim.body["token"]["id"].as_str().unwrap().to_owned();
        let row = &of(&app, Event::ScimTokenCreated)[0];
        assert_eq!(row.resource_id.as_deref(), Some(scim_id.as_str()));
        assert_eq!(
            (
                row.actor_kind.as_str(),
                row.actor_id.as_deref(),
                row.actor_name.as_deref()
            ),
            ("admin", Some(root_id.as_str()), Some("root"))
        );
        assert_eq!(row.request_id.as_deref(), Some("req-scim"));
        assert_eq!(row.client_address.as_deref(), Some("192.0.2.1"));
        let admin_token = app
            .send(
                Method::POST,
                "/admin/api/v1/admin-tokens",
                &session,
                Some(json!({"name": "Terraform"})),
            )
            .await;
        assert_eq!(admin_token.status, 201);
        let admin_token_id = admin_token.body["token"]["id"].as_str().unwrap().to_owned();
        let bearer = Auth::Bearer(admin_token.body["secret"].as_str().unwrap().to_owned());
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/scim-tokens/{scim_id}"),
                &bearer,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        // Revoking it again changes nothing and records nothing.
        app.send(
            Method::DELETE,
            &format!("/admin/api/v1/scim-tokens/{scim_id}"),
            &bearer,
            None,
        )
        .await;
        let revoked = of(&app, Event::ScimTokenRevoked);
        assert_eq!(revoked.len(), 1);
        assert_eq!(
            (
                revoked[0].actor_kind.as_str(),
                revoked[0].actor_id.as_deref(),
                revoked[0].actor_name.as_deref()
            ),
            (
                "admin_token",
                Some(admin_token_id.as_str()),
                Some("Terraform")
            )
        );

        // Settings (with the retention), SAML, the sync switch.
        let current = app
            .send(Method::GET, "/admin/api/v1/settings", &session, None)
            .await;
        assert_eq!(current.body["change_log_retention_days"], 90);
        let res = app
            .send_with(
                Method::PUT,
                "/admin/api/v1/settings",
                &session,
                Some(json!({"deprovisioning": "soft", "soft_delete_retention_days": 30,
                    "default_page_size": 100, "max_page_size": 1000, "change_log_retention_days": 7})),
                |r| r.insert_header((header::IF_MATCH, "*")),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["change_log_retention_days"], 7);
        let changed = &of(&app, Event::SettingsChanged)[0];
        let detail: Value = serde_json::from_str(&changed.detail).unwrap();
        assert_eq!(
            detail["changed"]["change_log_retention_days"],
            json!([90, 7])
        );
        assert_eq!(detail["changed"]["deprovisioning"], json!(["hard", "soft"]));
        assert!(detail["changed"].get("max_page_size").is_none());
        let res = app
            .send_with(
                Method::PUT,
                "/admin/api/v1/settings",
                &session,
                Some(json!({"deprovisioning": "soft", "soft_delete_retention_days": 30,
                    "default_page_size": 100, "max_page_size": 1000, "change_log_retention_days": 0})),
                |r| r.insert_header((header::IF_MATCH, "*")),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        assert_eq!(field_names(&res), ["change_log_retention_days"]);
        let res = app
            .send(
                Method::PUT,
                "/admin/api/v1/saml",
                &session,
                Some(json!({"entity_id": "urn:idp", "sso_url": "https://idp.example.com/sso", "certificate_pem": PEM})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let cautions = scim_admin::cautions::caution_ids();
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/sync/enable",
                &bearer,
                Some(json!({"accepted_cautions": cautions})),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        app.send(Method::POST, "/admin/api/v1/sync/disable", &session, None)
            .await;
        assert_eq!(of(&app, Event::SamlChanged).len(), 1);
        assert_eq!(of(&app, Event::SyncEnabled)[0].actor_kind, "admin_token");
        assert_eq!(of(&app, Event::SyncDisabled)[0].actor_kind, "admin");
        // The existing "Recent changes" log still works.
        let events = app
            .send(Method::GET, "/admin/api/v1/sync/events", &session, None)
            .await;
        assert_eq!(events.body.as_array().unwrap().len(), 2);

        // OAuth clients.
        let client = app
            .send(
                Method::POST,
                "/admin/api/v1/oauth-clients",
                &session,
                Some(json!({"name": "Entra OAuth", "redirect_uris": ["https://portal.azure.com/TokenAuthorize"]})),
            )
            .await;
        assert_eq!(client.status, 201, "{}", client.body);
        let client_id = client.body["client"]["client_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let rotated = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/oauth-clients/{client_id}/rotate-secret"),
                &session,
                None,
            )
            .await;
        assert_eq!(rotated.status, 200, "{}", rotated.body);
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/oauth-clients/{client_id}"),
                &bearer,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        for event in [
            Event::OauthClientCreated,
            Event::OauthClientChanged,
            Event::OauthClientDeleted,
        ] {
            let r = of(&app, event);
            assert_eq!(r.len(), 1, "{event:?}");
            assert_eq!(r[0].resource_id.as_deref(), Some(client_id.as_str()));
        }
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admin-tokens/{admin_token_id}"),
                &session,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        assert_eq!(of(&app, Event::AdminTokenRevoked).len(), 1);

        // No secret, token, password or hash anywhere in the log.
        let secrets = [
            scim.body["secret"].as_str().unwrap().to_owned(),
            admin_token.body["secret"].as_str().unwrap().to_owned(),
            client.body["client_secret"].as_str().unwrap().to_owned(),
            rotated.body["client_secret"].as_str().unwrap().to_owned(),
            PASSWORD.to_owned(),
            "not the password".to_owned(),
            cookie,
            csrf,
        ];
        let all: Vec<String> = rows(&app).iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(all.len(), 14, "{backend}: {all:#?}");
        for secret in &secrets {
            let hash = scim_store::hash_secret(secret);
            for row in &all {
                assert!(
                    !row.contains(secret.as_str()),
                    "{backend}: a secret in {row}"
                );
                assert!(!row.contains(&hash), "{backend}: a hash in {row}");
            }
        }
        let stored_hash: String = app
            .db
            .store()
            .read(|c| scim_store::admin::find_admin_credentials(c, "root"))
            .unwrap()
            .unwrap()
            .1;
        assert!(all.iter().all(|r| !r.contains(&stored_hash)));

        // The API lists them, newest first, with sentences.
        let page = app
            .send(
                Method::GET,
                "/admin/api/v1/activity?limit=200",
                &session,
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body["items"].as_array().unwrap();
        assert_eq!(items.len(), all.len());
        assert_eq!(items[0]["event"], "admin_token.revoked");
        assert_eq!(
            items[0]["summary"],
            "admin API token \u{201c}Terraform\u{201d} revoked, by administrator root"
        );
        assert_eq!(items[0]["actor"]["kind"], "admin");
        assert!(page.body["next_before"].is_null());
    }
}

/// Records `event` about `resource_type`/`id` by `actor` at `at`.
fn add(
    app: &TestApp,
    actor: &Actor,
    at: &str,
    event: Event,
    resource_type: &str,
    id: &str,
    detail: Value,
) {
    app.db
        .store()
        .write(|c| {
            changes::record(
                c,
                actor,
                at,
                &[NewChange::new(event, resource_type, Some(id)).detail(detail)],
            )
        })
        .unwrap();
}

fn token(name: &str) -> Actor {
    Actor::new(
        ActorKind::ScimToken,
        Some(format!("id-{name}")),
        Some(name.to_owned()),
    )
}

/// A provisioning history: two users, a group, memberships.
fn history(app: &TestApp) {
    let entra = token("Entra ID");
    let okta = token("Okta");
    let empty = json!({});
    add(
        app,
        &entra,
        "2026-12-01T10:00:00.000Z",
        Event::UserCreated,
        "User",
        "u1",
        empty.clone(),
    );
    add(
        app,
        &entra,
        "2026-12-01T10:01:00.000Z",
        Event::UserCreated,
        "User",
        "u2",
        empty.clone(),
    );
    add(
        app,
        &okta,
        "2026-12-02T10:00:00.000Z",
        Event::GroupCreated,
        "Group",
        "g1",
        empty.clone(),
    );
    add(
        app,
        &okta,
        "2026-12-02T10:01:00.000Z",
        Event::MembersAdded,
        "Group",
        "g1",
        json!({"members": ["u1", "u2"]}),
    );
    add(
        app,
        &entra,
        "2026-12-03T10:00:00.000Z",
        Event::UserPatched,
        "User",
        "u1",
        json!({"paths": ["title", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"]}),
    );
    add(
        app,
        &entra,
        "2026-12-03T11:00:00.000Z",
        Event::UserSuspended,
        "User",
        "u1",
        empty.clone(),
    );
    add(
        app,
        &okta,
        "2026-12-04T10:00:00.000Z",
        Event::MembersRemoved,
        "Group",
        "g1",
        json!({"members": ["u2"]}),
    );
    add(
        app,
        &okta,
        "2026-12-04T10:00:01.000Z",
        Event::MembersRemoved,
        "Group",
        "g1",
        json!({"members": ["u1"]}),
    );
    add(
        app,
        &Actor::cli("ops"),
        "2026-12-05T10:00:00.000Z",
        Event::SyncDisabled,
        "Sync",
        "sync",
        empty,
    );
}

fn events_of(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["event"].as_str().unwrap(),
                i["resource_id"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_activity_api_filters_pages_and_draws_timelines() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        // Only the provisioning history from here (the sign-in's rows are
        // older than it by position, but not by time: filter on actor).
        history(&app);
        let get = |q: &str| {
            let path = format!("/admin/api/v1/activity?{q}");
            let auth = auth.clone();
            let app = &app;
            async move { app.send(Method::GET, &path, &auth, None).await }
        };
        let res = get("actor_kind=scim_token").await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["items"].as_array().unwrap().len(), 8);
        let res = get("actor_kind=scim_token&actor_id=id-Okta").await;
        assert_eq!(
            events_of(&res.body),
            [
                "group.members_removed:g1",
                "group.members_removed:g1",
                "group.members_added:g1",
                "group.created:g1"
            ]
        );
        let res = get("resource_type=User&event=user.created&event=user.suspended").await;
        assert_eq!(
            events_of(&res.body),
            ["user.suspended:u1", "user.created:u2", "user.created:u1"]
        );
        let res = get("event=user.created,sync.disabled&since=2026-12-01T10:00:30Z").await;
        assert_eq!(
            events_of(&res.body),
            ["sync.disabled:sync", "user.created:u2"]
        );
        let res = get("resource_id=u1&until=2026-12-03").await;
        assert_eq!(events_of(&res.body), ["user.created:u1"]);
        // A user's timeline: its rows and the membership rows naming it.
        let res = get("subject=u2").await;
        assert_eq!(
            events_of(&res.body),
            [
                "group.members_removed:g1",
                "group.members_added:g1",
                "user.created:u2"
            ]
        );
        let summaries: Vec<&str> = res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["summary"].as_str().unwrap())
            .collect();
        assert_eq!(
            summaries,
            [
                "removed from g1, by SCIM token Okta",
                "added to g1, by SCIM token Okta",
                "created, by SCIM token Entra ID"
            ]
        );
        let res = get("subject=u1&limit=2").await;
        assert_eq!(
            events_of(&res.body),
            ["group.members_removed:g1", "user.suspended:u1"]
        );
        let before = res.body["next_before"].as_i64().unwrap();
        let res = get(&format!("subject=u1&limit=2&before={before}")).await;
        assert_eq!(
            events_of(&res.body),
            ["user.patched:u1", "group.members_added:g1"]
        );
        assert_eq!(
            res.body["items"][0]["summary"],
            "title and department changed, by SCIM token Entra ID"
        );
        let before = res.body["next_before"].as_i64().unwrap();
        let res = get(&format!("subject=u1&limit=2&before={before}")).await;
        assert_eq!(events_of(&res.body), ["user.created:u1"]);
        assert!(res.body["next_before"].is_null());
        // The group's own timeline, and the Activity page's wording.
        let res = get("subject=g1&limit=1").await;
        assert_eq!(
            res.body["items"][0]["summary"],
            "members removed: u1, by SCIM token Okta"
        );
        // Paging through everything: each row once, newest first.
        let mut seen = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let q = match before {
                Some(b) => format!("limit=4&before={b}"),
                None => "limit=4".to_owned(),
            };
            let res = get(&q).await;
            let items = res.body["items"].as_array().unwrap();
            assert!(items.len() <= 4);
            seen.extend(items.iter().map(|i| i["position"].as_i64().unwrap()));
            match res.body["next_before"].as_i64() {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        let all: Vec<i64> = rows(&app).iter().rev().map(|r| r.position).collect();
        assert_eq!(seen, all);
        // limit is capped, not refused.
        assert_eq!(get("limit=100000").await.status, 200);
        // Bad parameters: 422, each named.
        let res =
            get("event=user.exploded&actor_kind=robot&since=yesterday&limit=0&before=x&colour=red")
                .await;
        assert_error(&res, 422, "validation_failed");
        let mut fields = field_names(&res);
        fields.sort();
        assert_eq!(
            fields,
            ["actor_kind", "before", "colour", "event", "limit", "since"]
        );
        let res = get("subject=a%00b").await;
        assert_error(&res, 422, "validation_failed");
        let long = "x".repeat(300);
        let res = get(&format!("resource_id={long}")).await;
        assert_error(&res, 422, "validation_failed");
        // Hostile text is data on both backends.
        for q in [
            "subject=%22%25%5F*%3F%5B",
            "resource_id=%27%3B%20drop%20table%20change_log",
        ] {
            let res = get(q).await;
            assert_eq!(res.status, 200, "{q}: {}", res.body);
            assert!(res.body["items"].as_array().unwrap().is_empty(), "{q}");
        }
        let res = app
            .send(Method::GET, "/admin/api/v1/activity", &Auth::None, None)
            .await;
        assert_error(&res, 401, "unauthorized");
    }
}

/// Administrator management: each change recorded against the
/// administrator concerned, by whoever made it, never with a password.
#[actix_web::test]
async fn administrator_changes_are_recorded() {
    for db in backends() {
        let app = TestApp::new(db);
        let session = app.signed_in().await;
        let bob_password = "bob's long passphrase";
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admins",
                &session,
                Some(json!({"username": "bob", "password": bob_password})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let bob = res.body["id"].as_str().unwrap().to_owned();
        for path in ["disable", "disable", "enable", "unlock"] {
            let res = app
                .send(
                    Method::POST,
                    &format!("/admin/api/v1/admins/{bob}/{path}"),
                    &session,
                    None,
                )
                .await;
            assert_eq!(res.status, 200, "{path}: {}", res.body);
        }
        let new_password = "bob's next passphrase";
        let res = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/admins/{bob}/password"),
                &session,
                Some(json!({"password": new_password})),
            )
            .await;
        assert!(res.status.is_success(), "{}", res.body);
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admins/{bob}"),
                &session,
                None,
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        let about_bob: Vec<changes::Change> = rows(&app)
            .into_iter()
            .filter(|c| c.resource_id.as_deref() == Some(bob.as_str()))
            .collect();
        let details: Vec<(&str, Value)> = about_bob
            .iter()
            .map(|c| (c.event.as_str(), serde_json::from_str(&c.detail).unwrap()))
            .collect();
        let events: Vec<&str> = details.iter().map(|(e, _)| *e).collect();
        // Disabling twice changes it once.
        assert_eq!(
            events,
            [
                "admin.created",
                "admin.changed",
                "admin.changed",
                "admin.changed",
                "admin.changed",
                "admin.deleted"
            ],
            "{details:?}"
        );
        assert_eq!(details[1].1["disabled"], true);
        assert_eq!(details[2].1["enabled"], true);
        assert_eq!(details[3].1["unlocked"], true);
        assert_eq!(details[4].1["password_reset"], true);
        assert!(details.iter().all(|(_, d)| d["username"] == "bob"));
        for row in &about_bob {
            assert_eq!(row.actor_kind, "admin");
            assert_eq!(row.actor_name.as_deref(), Some("root"));
            let text = format!("{row:?}");
            assert!(!text.contains(bob_password) && !text.contains(new_password));
        }
    }
}
