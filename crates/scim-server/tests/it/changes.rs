//! The change log as the SCIM API fills it: every write records its
//! change by the request's token, request id and client address, in the
//! same transaction; failed and unchanged requests record nothing.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use scim_store::changes::{last_position, read_after, Change};

use crate::{entra_user, Res, TestApp};

const ADDRESS: &str = "192.0.2.9";

/// Sends a request as scimd would see it: from [`ADDRESS`], with the
/// request id `request_id` (`X-Request-Id`, which the test app puts in the
/// request's extensions as scimd's request log does).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    request_id: &str,
) -> Res {
    let mut req: TestRequest = app
        .request(method, path)
        .peer_addr(format!("{ADDRESS}:40000").parse().unwrap())
        .insert_header(("x-request-id", request_id));
    if let Some(body) = body {
        req = req
            .insert_header(("content-type", "application/scim+json"))
            .set_payload(body.to_string());
    }
    app.call(req).await
}

fn rows_after(app: &TestApp, position: i64) -> Vec<Change> {
    app.db
        .store()
        .read(|c| read_after(c, position, 1000))
        .unwrap()
}

fn last(app: &TestApp) -> i64 {
    app.db.store().read(last_position).unwrap()
}

fn token_id(app: &TestApp) -> String {
    app.db
        .store()
        .read(|c| scim_store::list_tokens(c, scim_store::OrgId::DEFAULT))
        .unwrap()
        .into_iter()
        .find(|t| t.name == "tests")
        .unwrap()
        .id
}

fn detail(row: &Change) -> Value {
    serde_json::from_str(&row.detail).unwrap()
}

/// Create, update the title, suspend with `active: "False"` (Entra's
/// string), add to a group, remove from it, delete the user, then the
/// group: exactly these rows, in this order, each with the token, the
/// request id, the client address, the resource's version after the change
/// and its externalId.
#[actix_web::test]
async fn an_entra_cycle_records_exactly_its_changes_in_order() {
    for app in TestApp::all() {
        let backend = app.backend();
        let start = last(&app);
        let mut body = entra_user("cycle@contoso.com");
        body["password"] = json!("Pa55word-never-logged");
        let res = send(&app, Method::POST, "/scim/v2/Users", Some(body), "r-create").await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let user = res.body["id"].as_str().unwrap().to_owned();
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let res = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Users/{user}"),
            Some(patch(
                json!([{"op": "Replace", "path": "title", "value": "Director"}]),
            )),
            "r-title",
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let res = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Users/{user}"),
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
            "r-suspend",
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let res = send(
            &app,
            Method::POST,
            "/scim/v2/Groups",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Sales", "externalId": "sales-ext"}),
            ),
            "r-group",
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let group = res.body["id"].as_str().unwrap().to_owned();
        let res = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Groups/{group}"),
            Some(patch(
                json!([{"op": "Add", "path": "members", "value": [{"value": user}]}]),
            )),
            "r-join",
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        let res = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Groups/{group}"),
            Some(patch(
                json!([{"op": "Remove", "path": format!("members[value eq \"{user}\"]")}]),
            )),
            "r-leave",
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        let res = send(
            &app,
            Method::DELETE,
            &format!("/scim/v2/Users/{user}"),
            None,
            "r-delete",
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        let res = send(
            &app,
            Method::DELETE,
            &format!("/scim/v2/Groups/{group}"),
            None,
            "r-group-delete",
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );

        let rows = rows_after(&app, start);
        let got: Vec<(&str, &str, Option<i64>, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.event.as_str(),
                    r.resource_id.as_deref().unwrap(),
                    r.resource_version,
                    r.request_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("user.created", user.as_str(), Some(1), "r-create"),
                ("user.patched", user.as_str(), Some(2), "r-title"),
                ("user.patched", user.as_str(), Some(3), "r-suspend"),
                ("user.suspended", user.as_str(), Some(3), "r-suspend"),
                ("group.created", group.as_str(), Some(1), "r-group"),
                ("group.members_added", group.as_str(), Some(2), "r-join"),
                ("group.members_removed", group.as_str(), Some(3), "r-leave"),
                ("user.deleted", user.as_str(), None, "r-delete"),
                ("group.deleted", group.as_str(), None, "r-group-delete"),
            ],
            "{backend}"
        );
        let token = token_id(&app);
        for row in &rows {
            assert_eq!(row.actor_kind, "scim_token", "{backend}");
            assert_eq!(row.actor_id.as_deref(), Some(token.as_str()));
            assert_eq!(row.actor_name.as_deref(), Some("tests"));
            assert_eq!(row.client_address.as_deref(), Some(ADDRESS));
            assert!(
                row.data.as_deref().is_none_or(|d| !d.contains("Pa55word")
                    && !d.contains("argon2")
                    && !d.contains("password")),
                "{backend}: no password, nor its hash: {row:?}"
            );
        }
        assert_eq!(detail(&rows[1]), json!({"paths": ["title"]}));
        assert_eq!(detail(&rows[2]), json!({"paths": ["active"]}));
        assert_eq!(detail(&rows[5]), json!({"members": [user]}));
        assert_eq!(detail(&rows[6]), json!({"members": [user]}));
        let created: Value = serde_json::from_str(rows[0].data.as_deref().unwrap()).unwrap();
        assert_eq!(created["userName"], "cycle@contoso.com");
        assert_eq!(created["id"], user.as_str());
        assert_eq!(created["meta"]["version"], "W/\"1\"");
        // A patch's data is its operations (RFC 9967 §2.4.2), in one
        // canonical form whatever form the client sent.
        let patched: Value = serde_json::from_str(rows[1].data.as_deref().unwrap()).unwrap();
        assert_eq!(
            patched["Operations"],
            json!([{"op": "replace", "path": "title", "value": "Director"}]),
            "{backend}"
        );
        let suspend: Value = serde_json::from_str(rows[2].data.as_deref().unwrap()).unwrap();
        assert_eq!(
            suspend["Operations"],
            json!([{"op": "replace", "path": "active", "value": false}]),
            "{backend}"
        );
        assert_eq!(
            patched["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:PatchOp"])
        );
        // Deactivate carries no data; every User row names the externalId.
        assert_eq!(rows[3].event, "user.suspended");
        assert_eq!(rows[3].data, None, "{backend}");
        for row in &rows {
            let external_id = match row.resource_type.as_str() {
                "User" => "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                _ => "sales-ext",
            };
            assert_eq!(
                row.external_id.as_deref(),
                Some(external_id),
                "{backend}: {row:?}"
            );
        }
        assert!(rows.windows(2).all(|w| w[0].position < w[1].position));
    }
}

/// PUT of a User and of a Group: `user.replaced` with the paths that
/// changed; `group.replaced`, then the members added and removed.
#[actix_web::test]
async fn a_put_records_the_replacement_and_the_membership_it_changes() {
    for app in TestApp::all() {
        let backend = app.backend();
        let alice = app.create_user(json!({"userName": "alice"})).await;
        let bob = app.create_user(json!({"userName": "bob"})).await;
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "Team", "members": [{"value": alice}]}),
            )
            .await;
        let group = res.body["id"].as_str().unwrap().to_owned();
        let start = last(&app);
        let res = app
            .put(
                &format!("/scim/v2/Users/{alice}"),
                json!({"userName": "alice", "name": {"givenName": "Alice"}}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let res = app
            .put(
                &format!("/scim/v2/Groups/{group}"),
                json!({"displayName": "Team B", "members": [{"value": bob}]}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let rows = rows_after(&app, start);
        let got: Vec<(&str, Option<i64>, Value)> = rows
            .iter()
            .map(|r| (r.event.as_str(), r.resource_version, detail(r)))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "user.replaced",
                    Some(2),
                    json!({"paths": ["name.givenName"]})
                ),
                ("group.replaced", Some(2), json!({"paths": ["displayName"]})),
                ("group.members_added", Some(2), json!({"members": [bob]})),
                (
                    "group.members_removed",
                    Some(2),
                    json!({"members": [alice]})
                ),
            ],
            "{backend}"
        );
    }
}

/// Requests that fail (a taken userName, an invalid PATCH, an unknown
/// member, a stale If-Match) and a PATCH that changes nothing record
/// nothing; a soft delete records `user.soft_deleted` and the group it
/// left.
#[actix_web::test]
async fn failed_and_unchanged_requests_record_nothing() {
    for app in TestApp::all() {
        let backend = app.backend();
        let user = app
            .create_user(json!({"userName": "kept", "title": "Same"}))
            .await;
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "G", "members": [{"value": user}]}),
            )
            .await;
        let group = res.body["id"].as_str().unwrap().to_owned();
        let start = last(&app);
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let failures = [
            app.post("/scim/v2/Users", json!({"userName": "KEPT"}))
                .await,
            app.patch(
                &format!("/scim/v2/Users/{user}"),
                patch(json!([{"op": "Replace", "path": "userName", "value": ""}])),
            )
            .await,
            app.patch(
                &format!("/scim/v2/Groups/{group}"),
                patch(json!([
                    {"op": "Replace", "path": "displayName", "value": "Renamed"},
                    {"op": "Add", "path": "members", "value": [{"value": "no-such-user"}]}
                ])),
            )
            .await,
            app.call(
                app.request(Method::DELETE, &format!("/scim/v2/Users/{user}"))
                    .insert_header(("if-match", "W/\"9\"")),
            )
            .await,
        ];
        for res in &failures {
            assert!(res.status.is_client_error(), "{backend}: {}", res.body);
        }
        // No change: answered 200 with the same version.
        let res = app
            .patch(
                &format!("/scim/v2/Users/{user}"),
                patch(json!([{"op": "Replace", "path": "title", "value": "Same"}])),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        assert_eq!(res.body["meta"]["version"], "W/\"1\"");
        let res = app
            .patch(
                &format!("/scim/v2/Groups/{group}"),
                patch(json!([{"op": "Add", "path": "members", "value": [{"value": user}]}])),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        assert!(
            rows_after(&app, start).is_empty(),
            "{backend}: {:?}",
            rows_after(&app, start)
        );

        // A soft delete: the user leaves its group, then is soft-deleted.
        app.db
            .store()
            .write(|c| {
                let current =
                    scim_store::settings::get_runtime_settings(c, scim_store::OrgId::DEFAULT)?;
                let mut v = current.values.clone();
                v.deprovisioning = scim_store::settings::Deprovisioning::Soft;
                scim_store::settings::update_runtime_settings(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &v,
                    current.version,
                    "tests",
                )
            })
            .unwrap();
        let res = app.delete(&format!("/scim/v2/Users/{user}")).await;
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );
        let rows = rows_after(&app, start);
        let got: Vec<(&str, Option<i64>)> = rows
            .iter()
            .map(|r| (r.event.as_str(), r.resource_version))
            .collect();
        assert_eq!(
            got,
            vec![
                ("group.members_removed", Some(2)),
                ("user.soft_deleted", Some(2)),
            ],
            "{backend}"
        );
        assert_eq!(rows[0].resource_id.as_deref(), Some(group.as_str()));
    }
}

/// Behind a proxy (`trust_forwarded_for`), the address recorded is the
/// last `X-Forwarded-For` entry, the one the proxy appended; otherwise the
/// TCP peer, whatever the header says.
#[actix_web::test]
async fn the_address_recorded_is_the_proxys_last_forwarded_entry_only_behind_a_proxy() {
    for trust in [false, true] {
        for db in scim_store::testing::backends() {
            let app = TestApp::with_config(
                db,
                scim_server::ScimConfig {
                    trust_forwarded_for: trust,
                    ..scim_server::ScimConfig::default()
                },
            );
            let start = last(&app);
            let res = app
                .call(
                    app.request(Method::POST, "/scim/v2/Users")
                        .peer_addr(format!("{ADDRESS}:40000").parse().unwrap())
                        .insert_header(("x-forwarded-for", "203.0.113.5, 198.51.100.7"))
                        .insert_header(("content-type", "application/scim+json"))
                        .set_payload(json!({"userName": "proxied"}).to_string()),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
            let rows = rows_after(&app, start);
            assert_eq!(
                rows[0].client_address.as_deref(),
                Some(if trust { "198.51.100.7" } else { ADDRESS }),
                "{}",
                app.backend()
            );
        }
    }
}

/// A password set by POST, by PATCH (with a path, and in Entra's
/// path-less form) and by PUT is never recorded, nor its hash, in any
/// column; a reactivation records `user.activated`, and a rename by
/// PATCH `group.patched` with the path; each row carries its time.
#[actix_web::test]
async fn passwords_are_never_recorded_and_reactivations_and_renames_are() {
    let secrets = [
        "Init1al-Secret-One",
        "Patch3d-Secret-Two",
        "Patch3d-Secret-Three",
        "Put-Secret-Four",
    ];
    for app in TestApp::all() {
        let backend = app.backend();
        let start = last(&app);
        let began = scim_core::datetime::now();
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let mut body = entra_user("pw@contoso.com");
        body["password"] = json!(secrets[0]);
        body["active"] = json!(false);
        let res = send(
            &app,
            Method::POST,
            "/scim/v2/Users",
            Some(body.clone()),
            "r1",
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let user = res.body["id"].as_str().unwrap().to_owned();
        let path = format!("/scim/v2/Users/{user}");
        for (ops, request) in [
            (
                json!([{"op": "replace", "path": "password", "value": secrets[1]}]),
                "r2",
            ),
            (
                json!([{"op": "Replace", "value": {"active": "True", "password": secrets[2]}}]),
                "r3",
            ),
        ] {
            let res = send(&app, Method::PATCH, &path, Some(patch(ops)), request).await;
            assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        }
        body["password"] = json!(secrets[3]);
        body["active"] = json!(true);
        body["title"] = json!("Buyer");
        let res = send(&app, Method::PUT, &path, Some(body), "r4").await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        let res = send(
            &app,
            Method::POST,
            "/scim/v2/Groups",
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": "Sales"}),
            ),
            "r5",
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{backend}: {}", res.body);
        let group = res.body["id"].as_str().unwrap().to_owned();
        let res = send(
            &app,
            Method::PATCH,
            &format!("/scim/v2/Groups/{group}"),
            Some(patch(
                json!([{"op": "replace", "path": "displayName", "value": "Sales EMEA"}]),
            )),
            "r6",
        )
        .await;
        // A group PATCH answers 204 unless attributes are asked for.
        assert_eq!(
            res.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            res.body
        );

        let ended = scim_core::datetime::now();
        let rows = rows_after(&app, start);
        // Each row's time is its change's: within the requests, in order
        // (they were sent one after the other).
        for pair in rows.windows(2) {
            assert!(pair[0].at <= pair[1].at, "{backend}: {pair:?}");
        }
        assert!(
            rows.iter().all(|r| began <= r.at && r.at <= ended),
            "{backend}: times outside [{began}, {ended}]: {rows:?}"
        );
        let got: Vec<(&str, &str, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r.event.as_str(),
                    r.request_id.as_deref().unwrap_or_default(),
                    detail(r),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("user.created", "r1", json!({})),
                ("user.patched", "r2", json!({"paths": ["password"]})),
                (
                    "user.patched",
                    "r3",
                    json!({"paths": ["active", "password"]})
                ),
                ("user.activated", "r3", json!({})),
                (
                    "user.replaced",
                    "r4",
                    json!({"paths": ["title", "password"]})
                ),
                ("group.created", "r5", json!({})),
                ("group.patched", "r6", json!({"paths": ["displayName"]})),
            ],
            "{backend}"
        );
        assert_eq!(rows[6].resource_id.as_deref(), Some(group.as_str()));
        for row in &rows {
            // Every column, as one text.
            let text = format!("{row:?}").to_lowercase();
            for secret in secrets {
                assert!(!text.contains(&secret.to_lowercase()), "{backend}: {row:?}");
            }
            assert!(!text.contains("argon2"), "{backend}: a hash in {row:?}");
            assert!(!text.contains("\"password\":"), "{backend}: {row:?}");
        }
    }
}
