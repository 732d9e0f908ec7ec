//! `POST /Bulk` (RFC 7644 §3.7) through the real app on both backends:
//! bulkId references in any order, `failOnErrors`, the limits, per-
//! operation errors, hostile bodies, and the change log.

use actix_web::http::{Method, StatusCode};
use serde_json::{json, Value};

use scim_server::{BulkLimits, ScimConfig};
use scim_store::changes::{last_position, read_after};
use scim_store::testing::backends;

use crate::{assert_scim_error, Res, TestApp};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

fn request(ops: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": ops})
}

async fn bulk(app: &TestApp, body: Value) -> Res {
    app.post("/scim/v2/Bulk", body).await
}

/// The results of a 200 BulkResponse.
fn results(res: &Res) -> Vec<Value> {
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.body["schemas"][0], BULK_RESPONSE, "{}", res.body);
    res.body["Operations"].as_array().unwrap().clone()
}

/// Asserts that a result is a failure with `status` and an RFC 7644
/// §3.12 error as its `response`.
fn assert_failed(result: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(result["status"], status.to_string(), "{result}");
    let response = &result["response"];
    assert_eq!(response["schemas"][0], ERROR, "{result}");
    assert_eq!(response["status"], status.to_string(), "{result}");
    assert_eq!(response["scimType"].as_str(), scim_type, "{result}");
    assert!(
        response["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{result}"
    );
}

fn id_of(result: &Value) -> String {
    let location = result["location"].as_str().unwrap();
    location.rsplit('/').next().unwrap().to_owned()
}

async fn user_count(app: &TestApp) -> i64 {
    let res = app.get("/scim/v2/Users?count=0").await;
    res.body["totalResults"].as_i64().unwrap()
}

/// RFC 7644 §3.7.2: the group comes first and names its members by the
/// bulkIds of users created later in the same request; the service
/// provider runs the users first.
#[actix_web::test]
async fn a_group_can_name_users_created_later_in_the_request() {
    for app in TestApp::all() {
        let backend = app.backend();
        let res = bulk(
            &app,
            request(json!([
                {"method": "POST", "path": "/Groups", "bulkId": "g",
                 "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                          "displayName": "Tour Guides",
                          "members": [{"type": "User", "value": "bulkId:alice"},
                                      {"type": "User", "value": "bulkId:bob"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "alice",
                 "data": {"userName": "alice@example.com"}},
                {"method": "POST", "path": "/Users/", "bulkId": "bob",
                 "data": {"userName": "bob@example.com"}}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 3, "{backend}: {}", res.body);
        let order: Vec<&str> = out.iter().map(|r| r["bulkId"].as_str().unwrap()).collect();
        assert_eq!(order, ["alice", "bob", "g"], "{backend}");
        for r in &out {
            assert_eq!(r["status"], "201", "{backend}: {r}");
            assert_eq!(r["method"], "POST");
            assert_eq!(r["version"], "W/\"1\"", "{backend}: {r}");
            assert!(r.get("response").is_none(), "{r}");
        }
        let alice = id_of(&out[0]);
        let bob = id_of(&out[1]);
        let group = id_of(&out[2]);
        assert_eq!(
            out[0]["location"],
            format!("http://localhost:8080/scim/v2/Users/{alice}")
        );
        let res = app.get(&format!("/scim/v2/Groups/{group}")).await;
        let mut members: Vec<&str> = res.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        members.sort_unstable();
        let mut want = vec![alice.as_str(), bob.as_str()];
        want.sort_unstable();
        assert_eq!(members, want, "{backend}");
        let res = app.get(&format!("/scim/v2/Users/{alice}")).await;
        assert_eq!(res.body["groups"][0]["value"], group.as_str(), "{backend}");
    }
}

/// PUT, PATCH and DELETE run as their single requests, with `version` as
/// `If-Match` (RFC 7644 §3.7): a stale version is 412 for that operation
/// alone; a reference in `path` resolves to the POST's resource.
#[actix_web::test]
async fn put_patch_and_delete_honour_version_and_path_references() {
    for app in TestApp::all() {
        let backend = app.backend();
        let user = app.create_user(json!({"userName": "v@example.com"})).await;
        let group = app
            .post("/scim/v2/Groups", json!({"displayName": "G"}))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let res = bulk(
            &app,
            request(json!([
                {"method": "PUT", "path": format!("/Users/{user}"), "version": "W/\"1\"",
                 "data": {"userName": "v@example.com", "displayName": "Put"}},
                {"method": "PATCH", "path": format!("/Users/{user}"), "version": "W/\"1\"",
                 "data": patch(json!([{"op": "replace", "path": "displayName", "value": "stale"}]))},
                {"method": "patch", "path": format!("/Users/{user}"), "version": "W/\"2\"",
                 "data": patch(json!([{"op": "replace", "path": "title", "value": "Boss"}]))},
                {"method": "POST", "path": "/Users", "bulkId": "n",
                 "data": {"userName": "n@example.com"}},
                {"method": "PATCH", "path": format!("/Groups/{group}"),
                 "data": patch(json!([{"op": "add", "path": "members", "value": [{"value": "bulkId:n"}]}]))},
                {"method": "PATCH", "path": "/Users/bulkId:n",
                 "data": patch(json!([{"op": "replace", "path": "nickName", "value": "Nick"}]))},
                {"method": "DELETE", "path": format!("/Groups/{group}"), "version": "W/\"2\""},
                {"method": "DELETE", "path": format!("/Users/{user}")},
                {"method": "DELETE", "path": format!("/Users/{user}")}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 9, "{backend}: {}", res.body);
        let statuses: Vec<&str> = out.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(
            statuses,
            ["200", "412", "200", "201", "204", "200", "204", "204", "404"],
            "{backend}: {}",
            res.body
        );
        assert_eq!(out[0]["version"], "W/\"2\"");
        assert_eq!(
            out[0]["location"],
            format!("http://localhost:8080/scim/v2/Users/{user}")
        );
        assert_failed(&out[1], 412, None);
        assert_eq!(out[2]["version"], "W/\"3\"");
        assert_eq!(out[2]["method"], "patch", "the method is echoed as sent");
        assert_eq!(out[4]["version"], "W/\"2\"");
        let new_user = id_of(&out[3]);
        assert_eq!(
            out[5]["location"],
            format!("http://localhost:8080/scim/v2/Users/{new_user}")
        );
        assert_failed(&out[8], 404, None);
        let res = app.get(&format!("/scim/v2/Users/{new_user}")).await;
        assert_eq!(res.body["nickName"], "Nick", "{backend}");
        assert_eq!(
            app.get(&format!("/scim/v2/Groups/{group}")).await.status,
            404
        );
        assert_eq!(app.get(&format!("/scim/v2/Users/{user}")).await.status, 404);
    }
}

/// `failOnErrors`: processing stops once that many operations failed;
/// the operations after it are neither run nor listed. Without it every
/// operation runs; each is atomic on its own.
#[actix_web::test]
async fn fail_on_errors_stops_after_that_many_errors() {
    for app in TestApp::all() {
        let backend = app.backend();
        app.create_user(json!({"userName": "taken@example.com"}))
            .await;
        let ops = json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "taken@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"emails": "not a user"}},
            {"method": "POST", "path": "/Users", "bulkId": "d", "data": {"userName": "d@example.com"}}
        ]);
        let mut body = request(ops.clone());
        body["failOnErrors"] = json!(1);
        let out = results(&bulk(&app, body).await);
        assert_eq!(out.len(), 1, "{backend}: {out:?}");
        assert_failed(&out[0], 409, Some("uniqueness"));
        assert!(
            out[0].get("location").is_none(),
            "a failed POST has no location"
        );
        assert_eq!(user_count(&app).await, 1, "{backend}");

        let mut body = request(ops.clone());
        body["failOnErrors"] = json!(2);
        let out = results(&bulk(&app, body).await);
        assert_eq!(out.len(), 3, "{backend}: {out:?}");
        assert_eq!(out[1]["status"], "201");
        assert_failed(&out[2], 400, Some("invalidValue"));
        assert_eq!(user_count(&app).await, 2, "{backend}");

        let out = results(&bulk(&app, request(ops)).await);
        let statuses: Vec<&str> = out.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["409", "409", "400", "201"], "{backend}");
        assert_eq!(user_count(&app).await, 3, "{backend}");
    }
}

/// maxOperations and maxPayloadSize: advertised, and over either the
/// whole request is 413 with a SCIM error naming the limit (RFC 7644
/// §3.7.4), and nothing is written.
#[actix_web::test]
async fn limits_are_advertised_and_enforced() {
    for db in backends() {
        let limits = BulkLimits {
            max_operations: 2,
            max_payload_bytes: 2048,
        };
        let app = TestApp::with_config(
            db,
            ScimConfig {
                bulk: limits,
                ..ScimConfig::default()
            },
        );
        let backend = app.backend();
        let res = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(
            res.body["bulk"],
            json!({"supported": true, "maxOperations": 2, "maxPayloadSize": 2048}),
            "{backend}"
        );
        let op = |n: usize| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"),
                   "data": {"userName": format!("u{n}@example.com")}})
        };
        let res = bulk(&app, request(json!([op(1), op(2), op(3)]))).await;
        assert_scim_error(&res, 413, None);
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains("maxOperations (2)"), "{detail}");
        let mut big = op(4);
        big["data"]["displayName"] = json!("x".repeat(3000));
        let res = bulk(&app, request(json!([big]))).await;
        assert_scim_error(&res, 413, None);
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains("maxPayloadSize (2048 bytes)"), "{detail}");
        assert_eq!(user_count(&app).await, 0, "{backend}");
        // Within both limits.
        let out = results(&bulk(&app, request(json!([op(1), op(2)]))).await);
        assert_eq!(out.len(), 2);
        // The bulk limit is its own: a single request keeps the body limit.
        let mut single = json!({"userName": "big@example.com"});
        single["displayName"] = json!("x".repeat(3000));
        let res = app.post("/scim/v2/Users", single).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
}

/// The default limits: 1000 operations, 1 MiB; 1001 operations is 413.
#[actix_web::test]
async fn the_default_limits_refuse_a_huge_array() {
    for app in TestApp::all() {
        let res = app.get("/scim/v2/ServiceProviderConfig").await;
        assert_eq!(res.body["bulk"]["maxOperations"], 1000);
        assert_eq!(res.body["bulk"]["maxPayloadSize"], 1_048_576);
        let ops: Vec<Value> = (0..1001)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        let res = bulk(&app, request(Value::Array(ops))).await;
        assert_scim_error(&res, 413, None);
    }
}

/// A malformed request is refused whole (400) and runs nothing.
#[actix_web::test]
async fn malformed_requests_are_refused_whole() {
    for app in TestApp::all() {
        let backend = app.backend();
        let ok = json!({"method": "POST", "path": "/Users", "bulkId": "a",
                        "data": {"userName": "a@example.com"}});
        let dup = json!({"method": "POST", "path": "/Users", "bulkId": "a",
                         "data": {"userName": "b@example.com"}});
        let cases = [
            (json!([ok]), "not an object"),
            (json!({"schemas": [BULK_REQUEST]}), "no Operations"),
            (
                json!({"schemas": [BULK_REQUEST], "Operations": {"a": 1}}),
                "Operations not an array",
            ),
            (
                json!({"schemas": ["urn:x"], "Operations": [ok]}),
                "wrong schema",
            ),
            (
                request(json!([ok, 7])),
                "an operation that is not an object",
            ),
            (request(json!([ok, dup])), "duplicate bulkId"),
            (
                request(json!([{"method": "POST", "path": "/Users", "bulkId": 5, "data": {}}])),
                "bulkId not a string",
            ),
            (
                request(json!([{"method": "POST", "path": "/Users", "bulkId": "", "data": {}}])),
                "empty bulkId",
            ),
            (
                {
                    let mut b = request(json!([ok]));
                    b["failOnErrors"] = json!(0);
                    b
                },
                "failOnErrors 0",
            ),
            (
                {
                    let mut b = request(json!([ok]));
                    b["failOnErrors"] = json!("1");
                    b
                },
                "failOnErrors a string",
            ),
            (
                {
                    let mut b = request(json!([ok]));
                    b["failOnErrors"] = json!(-1);
                    b
                },
                "failOnErrors negative",
            ),
        ];
        for (body, what) in cases {
            let res = bulk(&app, body).await;
            assert_eq!(res.status.as_u16(), 400, "{backend}: {what}: {}", res.body);
            assert_eq!(res.body["schemas"][0], ERROR, "{backend}: {what}");
            assert!(res.body["scimType"].is_string(), "{backend}: {what}");
        }
        // Deep or invalid JSON: invalidSyntax, never a 500.
        let deep = format!(
            "{{\"Operations\": [{{\"method\": \"POST\", \"path\": \"/Users\", \"bulkId\": \"d\", \"data\": {}{}}}]}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        for raw in [deep, "{\"Operations\": [".to_owned(), "\u{0}".to_owned()] {
            let res = app
                .call(
                    app.request(Method::POST, "/scim/v2/Bulk")
                        .insert_header(("Content-Type", "application/scim+json"))
                        .set_payload(raw),
                )
                .await;
            assert_scim_error(&res, 400, Some("invalidSyntax"));
        }
        // Not JSON at all: 415.
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Bulk")
                    .insert_header(("Content-Type", "text/plain"))
                    .set_payload("hello"),
            )
            .await;
        assert_scim_error(&res, 415, None);
        // Only POST is routed.
        let res = app.get("/scim/v2/Bulk").await;
        assert_scim_error(&res, 405, None);
        assert_eq!(user_count(&app).await, 0, "{backend}");
    }
}

/// A malformed operation fails alone with its RFC 7644 §3.12 error; the
/// others run.
#[actix_web::test]
async fn malformed_operations_fail_alone() {
    for app in TestApp::all() {
        let backend = app.backend();
        let res = bulk(
            &app,
            request(json!([
                {"method": "GET", "path": "/Users"},
                {"path": "/Users", "bulkId": "m"},
                {"method": "POST", "path": "/Schemas", "bulkId": "s", "data": {}},
                {"method": "POST", "path": "/Users/123", "bulkId": "p", "data": {"userName": "p@example.com"}},
                {"method": "PUT", "path": "/Users", "data": {"userName": "x"}},
                {"method": "DELETE", "path": "/Bulk/1"},
                {"method": "DELETE"},
                {"method": "POST", "path": "/Users", "data": {"userName": "nobulkid@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "nodata"},
                {"method": "PUT", "path": "/Users/1", "version": 3, "data": {"userName": "x"}},
                {"method": "POST", "path": "/Users", "bulkId": "str", "data": "userName"},
                {"method": "DELETE", "path": "/Users/a\u{0}b"},
                {"method": "PATCH", "path": "/Groups/0", "data": {"Operations": []}},
                {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "ok@example.com"}}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 14, "{backend}: {}", res.body);
        let want: [(u16, Option<&str>); 13] = [
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidValue")),
            (400, Some("invalidSyntax")),
            (400, Some("invalidValue")),
            (400, Some("invalidSyntax")),
            (404, None),
            (400, Some("invalidSyntax")),
        ];
        for (i, (status, scim_type)) in want.into_iter().enumerate() {
            assert_failed(&out[i], status, scim_type);
        }
        assert_eq!(out[0]["method"], "GET");
        assert_eq!(out[1]["method"], Value::Null);
        assert_eq!(out[13]["status"], "201", "{backend}");
        assert_eq!(user_count(&app).await, 1, "{backend}");
    }
}

/// References that cannot be resolved: to no POST of the request, to a
/// POST that failed, and a group naming itself (409); a cycle between
/// groups is resolved (RFC 7644 §3.7.1).
#[actix_web::test]
async fn unresolvable_references_are_409() {
    for app in TestApp::all() {
        let backend = app.backend();
        app.create_user(json!({"userName": "taken@example.com"}))
            .await;
        let res = bulk(
            &app,
            request(json!([
                {"method": "POST", "path": "/Groups", "bulkId": "ga",
                 "data": {"displayName": "A", "members": [{"value": "bulkId:gb"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "gb",
                 "data": {"displayName": "B", "members": [{"value": "bulkId:ga"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "self",
                 "data": {"displayName": "Self", "members": [{"value": "bulkId:self"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "ghost",
                 "data": {"displayName": "Ghost", "members": [{"value": "bulkId:nobody"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "dup",
                 "data": {"userName": "taken@example.com"}},
                {"method": "PATCH", "path": "/Users/bulkId:dup",
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "title", "value": "x"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "fine",
                 "data": {"displayName": "Fine"}}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 7, "{backend}: {}", res.body);
        let by_id = |id: &str| {
            out.iter()
                .find(|r| r["bulkId"] == id)
                .unwrap_or_else(|| panic!("{id} in {out:?}"))
        };
        for id in ["self", "ghost"] {
            assert_failed(by_id(id), 409, None);
        }
        assert_eq!(by_id("ga")["status"], "201", "{backend}: {}", res.body);
        assert_eq!(by_id("gb")["status"], "201", "{backend}: {}", res.body);
        assert!(by_id("self")["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("circular"));
        assert!(by_id("ghost")["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("bulkId:nobody"));
        assert_failed(by_id("dup"), 409, Some("uniqueness"));
        let patch = out.iter().find(|r| r["method"] == "PATCH").unwrap();
        assert_failed(patch, 409, None);
        assert_eq!(by_id("fine")["status"], "201");
        let res = app.get("/scim/v2/Groups").await;
        assert_eq!(res.body["totalResults"], 3, "{backend}: A, B and Fine");
    }
}

/// Each operation writes the change-log rows of its single request, by
/// the bulk request's token, request id and address; failed operations
/// write none.
#[actix_web::test]
async fn each_operation_records_its_changes_by_the_request() {
    for app in TestApp::all() {
        let backend = app.backend();
        let start = app.db.store().read(last_position).unwrap();
        let body = request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "u",
             "data": {"userName": "logged@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "bad",
             "data": {"userName": "logged@example.com"}},
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"displayName": "Logged", "members": [{"value": "bulkId:u"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:u"}
        ]));
        let res = app
            .call(
                app.request(Method::POST, "/scim/v2/Bulk")
                    .peer_addr("192.0.2.7:40000".parse().unwrap())
                    .insert_header(("x-request-id", "r-bulk"))
                    .insert_header(("Content-Type", "application/scim+json"))
                    .set_payload(body.to_string()),
            )
            .await;
        let out = results(&res);
        let statuses: Vec<&str> = out.iter().map(|r| r["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["201", "409", "201", "204"], "{backend}");
        let user = id_of(&out[0]);
        let group = id_of(&out[2]);
        let rows = app.db.store().read(|c| read_after(c, start, 100)).unwrap();
        let got: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.event.as_str(), r.resource_id.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("user.created", Some(user.as_str())),
                ("group.created", Some(group.as_str())),
                ("group.members_added", Some(group.as_str())),
                ("group.members_removed", Some(group.as_str())),
                ("user.deleted", Some(user.as_str())),
            ],
            "{backend}"
        );
        for row in &rows {
            assert_eq!(row.request_id.as_deref(), Some("r-bulk"), "{backend}");
            assert_eq!(row.client_address.as_deref(), Some("192.0.2.7"));
            assert_eq!(row.actor_name.as_deref(), Some("tests"), "{backend}");
        }
    }
}

/// The members of a group, by id.
async fn members_of(app: &TestApp, location: &str) -> Vec<String> {
    let path = location.split("/scim/v2").nth(1).unwrap();
    let res = app.get(&format!("/scim/v2{path}")).await;
    let mut ids: Vec<String> = res.body["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// RFC 7644 §3.7.1's own example: two groups created in one request, each
/// a member of the other. The first runs without its member, which is
/// added once the second exists; each result is the group's final
/// version.
#[actix_web::test]
async fn circular_group_references_are_resolved() {
    for app in TestApp::all() {
        let backend = app.backend();
        let user = app.create_user(json!({"userName": "u@example.com"})).await;
        let res = bulk(
            &app,
            request(json!([
                {"method": "POST", "path": "/Groups", "bulkId": "qwerty",
                 "data": {"displayName": "Group A",
                          "members": [{"type": "Group", "value": "bulkId:ytrewq"},
                                      {"type": "User", "value": user}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
                 "data": {"displayName": "Group B",
                          "members": [{"type": "Group", "value": "bulkId:qwerty"}]}}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 2, "{backend}: {}", res.body);
        assert_eq!(out[0]["bulkId"], "qwerty");
        assert_eq!(out[0]["status"], "201", "{backend}: {}", res.body);
        assert_eq!(out[1]["status"], "201", "{backend}: {}", res.body);
        let (a, b) = (id_of(&out[0]), id_of(&out[1]));
        let mut want_a = vec![b.clone(), user.clone()];
        want_a.sort();
        assert_eq!(
            members_of(&app, out[0]["location"].as_str().unwrap()).await,
            want_a
        );
        assert_eq!(
            members_of(&app, out[1]["location"].as_str().unwrap()).await,
            vec![a.clone()]
        );
        // Each result's version is the group's as stored now.
        for r in &out {
            let path = r["location"]
                .as_str()
                .unwrap()
                .split("/scim/v2")
                .nth(1)
                .unwrap()
                .to_owned();
            let got = app.get(&format!("/scim/v2{path}")).await;
            assert_eq!(got.body["meta"]["version"], r["version"], "{backend}: {r}");
        }
        assert_eq!(
            out[0]["version"], "W/\"2\"",
            "{backend}: created, then its member added"
        );

        // The second group cannot be created: the first stays, without
        // that member, and its result says so, with its location.
        app.post("/scim/v2/Groups", json!({"displayName": "Taken"}))
            .await;
        let res = bulk(
            &app,
            request(json!([
                {"method": "POST", "path": "/Groups", "bulkId": "c",
                 "data": {"displayName": "Group C", "members": [{"value": "bulkId:d"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "d",
                 "data": {"displayName": "Taken", "members": [{"value": "bulkId:c"}]}}
            ])),
        )
        .await;
        let out = results(&res);
        assert_failed(&out[0], 409, None);
        let detail = out[0]["response"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("created without") && detail.contains("bulkId:d"),
            "{detail}"
        );
        assert!(out[0]["location"].as_str().is_some(), "{}", res.body);
        assert!(out[0].get("version").is_none(), "{}", res.body);
        assert_failed(&out[1], 409, Some("uniqueness"));
        assert!(members_of(&app, out[0]["location"].as_str().unwrap())
            .await
            .is_empty());
    }
}

/// User Synchronization disabled by an administrator in the middle of a
/// bulk request: the operations that started before stand, every one
/// after gets its own 403, and nothing is written after the switch. The
/// switch happens at a known point: the API's bulk observer runs it just
/// before the third operation.
#[actix_web::test]
async fn sync_disabled_mid_request_refuses_the_operations_after_it() {
    for app in TestApp::all() {
        let backend = app.backend();
        let group = app
            .post("/scim/v2/Groups", json!({"displayName": "Before"}))
            .await;
        let group_id = group.body["id"].as_str().unwrap().to_owned();
        let from = app.db.store().read(last_position).unwrap();
        let store = app.db.store().clone();
        assert!(app.api.observe_bulk(move |i| {
            if i == 2 {
                store
                    .write(|c| {
                        scim_store::sync::disable_sync(
                            c,
                            scim_store::OrgId::DEFAULT,
                            "tests",
                            "mid-bulk",
                        )
                    })
                    .unwrap();
            }
        }));
        let res = bulk(
            &app,
            request(json!([
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "a@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "b@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "c@example.com"}},
                {"method": "PATCH", "path": "/Users/bulkId:a",
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "title", "value": "x"}]}},
                {"method": "PATCH", "path": format!("/Groups/{group_id}"),
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:b"}]}]}},
                {"method": "DELETE", "path": format!("/Groups/{group_id}")}
            ])),
        )
        .await;
        let out = results(&res);
        assert_eq!(out.len(), 6, "{backend}: {}", res.body);
        assert_eq!(out[0]["status"], "201", "{backend}: {}", res.body);
        assert_eq!(out[1]["status"], "201", "{backend}: {}", res.body);
        for r in &out[2..] {
            assert_failed(r, 403, None);
            assert!(
                r["response"]["detail"]
                    .as_str()
                    .unwrap()
                    .contains("synchronization is disabled"),
                "{backend}: {r}"
            );
        }
        // Nothing after the switch: only the two users' creations are in
        // the change log (besides the switch itself), the group is as it
        // was, and the PATCH did not reach the user.
        let events: Vec<String> = app
            .db
            .store()
            .read(|c| read_after(c, from, 100))
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .filter(|e| !e.starts_with("sync."))
            .collect();
        assert_eq!(events, ["user.created", "user.created"], "{backend}");
        app.set_sync(true);
        assert_eq!(user_count(&app).await, 2, "{backend}");
        let g = app.get(&format!("/scim/v2/Groups/{group_id}")).await;
        assert_eq!(g.status, StatusCode::OK, "{backend}");
        assert_eq!(g.body["meta"]["version"], group.body["meta"]["version"]);
        let a = app.get(&format!("/scim/v2/Users/{}", id_of(&out[0]))).await;
        assert!(a.body.get("title").is_none(), "{backend}: {}", a.body);
    }
}
