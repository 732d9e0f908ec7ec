//! A User's `password` is hashed on the process's bounded Argon2id gate:
//! when every slot stays busy past the queue timeout, the write is refused
//! with a SCIM 503 and `Retry-After`, and nothing is stored.

use std::time::Duration;

use actix_web::http::StatusCode;
use scim_server::ScimConfig;
use scim_store::testing::backends;
use scim_store::PasswordHasher;
use serde_json::json;

use super::TestApp;

#[actix_web::test]
async fn password_writes_wait_for_the_gate_then_get_503() {
    for db in backends() {
        // One slot, no queue: a held slot makes every password write busy.
        let hasher = PasswordHasher::new(1, Duration::ZERO);
        let app = TestApp::with_config(
            db,
            ScimConfig {
                password_hasher: hasher.clone(),
                ..ScimConfig::default()
            },
        );
        let created = app.post("/scim/v2/Users", json!({"userName": "ada"})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();

        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release_tx, release) = std::sync::mpsc::channel::<()>();
        let holder = hasher.clone();
        let held = actix_web::rt::spawn(async move {
            holder
                .run_in_slot(move || {
                    entered_tx.send(()).unwrap();
                    release.recv().unwrap();
                })
                .await
        });
        actix_web::web::block(move || entered.recv())
            .await
            .unwrap()
            .unwrap();

        let res = app
            .post(
                "/scim/v2/Users",
                json!({"userName": "grace", "password": "a long password"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
        assert_eq!(res.header("retry-after"), Some("1"));
        assert_eq!(
            res.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(res.body["status"], "503");
        let res = app
            .put(
                &format!("/scim/v2/Users/{id}"),
                json!({"userName": "ada", "password": "a long password"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
        let res = app
            .patch(
                &format!("/scim/v2/Users/{id}"),
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "password", "value": "another long one"}]
                }),
            )
            .await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
        // Writes without a password do not wait for the gate.
        let res = app
            .post("/scim/v2/Users", json!({"userName": "linus"}))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        // Nothing of the refused writes was stored.
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22grace%22")
            .await;
        assert_eq!(res.body["totalResults"], 0);
        assert_eq!(hasher.runs_started(), 1, "only the held slot ran");

        release_tx.send(()).unwrap();
        held.await.unwrap().unwrap();
        let res = app
            .post(
                "/scim/v2/Users",
                json!({"userName": "grace", "password": "a long password"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
}
