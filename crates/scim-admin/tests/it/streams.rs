//! Event streams through the admin API: secrets are returned once and
//! never listed, bad settings name their field, keys rotate.

use actix_web::http::Method;
use scim_store::testing::backends;
use serde_json::json;

use super::{assert_error, field_names, TestApp};

#[actix_web::test]
async fn streams_show_their_secrets_once_and_rotate_their_keys() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/event-streams",
                &auth,
                Some(json!({"name": "CRM", "delivery": "push",
                    "endpoint_url": "https://crm.example.com/events",
                    "authorization": "Bearer receiver-secret-value", "alg": "HS256"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let id = res.body["stream"]["id"].as_str().unwrap().to_owned();
        assert!(res.body["receiver_token"]
            .as_str()
            .unwrap()
            .starts_with("scimd_rcv_"));
        let secret = res.body["shared_secret"].as_str().unwrap().to_owned();
        assert_eq!(
            res.body["stream"]["audience"],
            "https://crm.example.com/events"
        );
        assert_eq!(res.body["stream"]["state"], "active");
        assert_eq!(res.body["stream"]["lag"], 0);
        let listed = app
            .send(Method::GET, "/admin/api/v1/event-streams", &auth, None)
            .await;
        let text = listed.body.to_string();
        assert_eq!(listed.body.as_array().unwrap().len(), 1);
        for hidden in ["receiver-secret-value", "scimd_rcv_", secret.as_str()] {
            assert!(!text.contains(hidden), "{hidden} listed: {text}");
        }
        assert_eq!(listed.body[0]["has_authorization"], true);

        // Bad settings name their field.
        for (body, field) in [
            (
                json!({"name": "x", "delivery": "carrier-pigeon"}),
                "delivery",
            ),
            (json!({"name": "x", "delivery": "poll"}), "audience"),
            (
                json!({"name": "x", "delivery": "push", "endpoint_url": "https://a.example", "event_types": ["explode"]}),
                "event_types",
            ),
            (
                json!({"name": "x", "delivery": "push", "endpoint_url": "https://a.example", "alg": "RS256"}),
                "alg",
            ),
        ] {
            let res = app
                .send(
                    Method::POST,
                    "/admin/api/v1/event-streams",
                    &auth,
                    Some(body),
                )
                .await;
            assert_error(&res, 422, "validation_failed");
            assert_eq!(field_names(&res), [field]);
        }
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/event-streams",
                &auth,
                Some(json!({"name": "x", "delivery": "push", "endpoint_url": "ftp://a.example"})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");

        // HS256: rotating returns the new shared secret once; nothing is published.
        let res = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/event-streams/{id}/keys"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert!(res.body["shared_secret"]
            .as_str()
            .is_some_and(|s| s != secret));
        let keys = app
            .send(
                Method::GET,
                &format!("/admin/api/v1/event-streams/{id}/keys"),
                &auth,
                None,
            )
            .await;
        assert_eq!(keys.body.as_array().unwrap().len(), 2);
        assert!(keys.body[0]["retired_at"].is_null() && !keys.body[1]["retired_at"].is_null());
        assert!(!keys.body.to_string().contains(&secret));
        let signing = keys.body[0]["kid"].as_str().unwrap();
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/event-streams/{id}/keys/{signing}"),
                &auth,
                None,
            )
            .await;
        assert_error(&res, 409, "conflict");
        let jwks = app
            .send(
                Method::GET,
                &format!("/admin/api/v1/event-streams/{id}/jwks"),
                &auth,
                None,
            )
            .await;
        assert_eq!(jwks.body, json!({"keys": []}));

        let res = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/event-streams/{id}/replay"),
                &auth,
                Some(json!({"position": 1, "since": "2026-01-01T00:00:00Z"})),
            )
            .await;
        assert_error(&res, 422, "validation_failed");
        let res = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/event-streams/{id}/pause"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.body["state"], "paused");
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/event-streams/{id}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 204);
        let res = app
            .send(
                Method::GET,
                &format!("/admin/api/v1/event-streams/{id}"),
                &auth,
                None,
            )
            .await;
        assert_error(&res, 404, "not_found");
    }
}

#[actix_web::test]
async fn another_organizations_streams_oauth_clients_and_grants_answer_404() {
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/organizations",
                &auth,
                Some(json!({"slug": "acme", "name": "Acme Corp"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let in_acme =
            |r: actix_web::test::TestRequest| r.insert_header(("X-Scimd-Organization", "acme"));

        // A stream created for acme is acme's: listed there only, and the
        // default organization's requests do not find it.
        let res = app
            .send_with(
                Method::POST,
                "/admin/api/v1/event-streams",
                &auth,
                Some(json!({"name": "Acme CRM", "delivery": "poll", "audience": "https://crm.acme.example"})),
                in_acme,
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let id = res.body["stream"]["id"].as_str().unwrap().to_owned();
        let listed = app
            .send_with(
                Method::GET,
                "/admin/api/v1/event-streams",
                &auth,
                None,
                in_acme,
            )
            .await;
        assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.body);
        let listed = app
            .send(Method::GET, "/admin/api/v1/event-streams", &auth, None)
            .await;
        assert!(
            listed.body.as_array().unwrap().is_empty(),
            "{}",
            listed.body
        );
        let base = format!("/admin/api/v1/event-streams/{id}");
        for (method, path, body) in [
            (Method::GET, base.clone(), None),
            (Method::POST, format!("{base}/pause"), None),
            (Method::POST, format!("{base}/resume"), None),
            (
                Method::POST,
                format!("{base}/replay"),
                Some(json!({"position": 0})),
            ),
            (Method::GET, format!("{base}/jwks"), None),
            (Method::GET, format!("{base}/keys"), None),
            (Method::POST, format!("{base}/keys"), None),
            (Method::DELETE, format!("{base}/keys/any"), None),
            (Method::DELETE, base.clone(), None),
            // Not an id at all (PostgreSQL refuses NUL in a parameter).
            (Method::GET, "/admin/api/v1/event-streams/%00".into(), None),
            (
                Method::POST,
                "/admin/api/v1/event-streams/%00/pause".into(),
                None,
            ),
        ] {
            let res = app.send(method.clone(), &path, &auth, body).await;
            assert_error(&res, 404, "not_found");
        }
        // Nothing happened to it: still active, and acme's requests act on it.
        let res = app
            .send_with(Method::POST, &format!("{base}/pause"), &auth, None, in_acme)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["state"], "paused");
        let res = app
            .send_with(Method::DELETE, &base, &auth, None, in_acme)
            .await;
        assert_eq!(res.status, 204, "{}", res.body);

        // An OAuth client of the default organization: acme's requests
        // neither rotate nor delete it, nor see or revoke its grants.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/oauth-clients",
                &auth,
                Some(json!({"name": "Entra ID", "redirect_uris": ["https://portal.azure.com/TokenAuthorize"]})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let client_id = res.body["client"]["client_id"].as_str().unwrap().to_owned();
        let (grant_id, _) = app
            .db
            .store()
            .write(|c| {
                scim_store::oauth::create_authorization(
                    c,
                    &scim_store::oauth::NewAuthorization {
                        client_id: &client_id,
                        redirect_uri: "https://portal.azure.com/TokenAuthorize",
                        scope: "scim",
                        code_challenge: None,
                        admin_id: "root",
                        admin_username: "root",
                    },
                    time::OffsetDateTime::now_utc(),
                    time::Duration::minutes(1),
                )
            })
            .unwrap();
        let client = format!("/admin/api/v1/oauth-clients/{client_id}");
        let res = app
            .send_with(
                Method::POST,
                &format!("{client}/rotate-secret"),
                &auth,
                None,
                in_acme,
            )
            .await;
        assert_error(&res, 404, "not_found");
        let res = app
            .send_with(Method::DELETE, &client, &auth, None, in_acme)
            .await;
        assert_error(&res, 404, "not_found");
        let res = app
            .send_with(
                Method::GET,
                "/admin/api/v1/oauth-grants",
                &auth,
                None,
                in_acme,
            )
            .await;
        assert!(res.body.as_array().unwrap().is_empty(), "{}", res.body);
        let res = app
            .send_with(
                Method::DELETE,
                &format!("/admin/api/v1/oauth-grants/{grant_id}"),
                &auth,
                None,
                in_acme,
            )
            .await;
        assert_error(&res, 404, "not_found");
        // In its own organization all of it works.
        let res = app
            .send(Method::GET, "/admin/api/v1/oauth-grants", &auth, None)
            .await;
        assert_eq!(res.body[0]["state"], "active", "{}", res.body);
        let res = app
            .send(
                Method::POST,
                &format!("{client}/rotate-secret"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/oauth-grants/{grant_id}"),
                &auth,
                None,
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
        let res = app.send(Method::DELETE, &client, &auth, None).await;
        assert_eq!(res.status, 204, "{}", res.body);
    }
}

#[actix_web::test]
async fn a_stream_is_paused_resumed_and_replayed_through_the_api_and_shows_its_lag() {
    use scim_store::changes::{self, Actor, Event, NewChange};
    for db in backends() {
        let app = TestApp::new(db);
        let auth = app.signed_in().await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/event-streams",
                &auth,
                Some(json!({"name": "App", "delivery": "poll",
                    "audience": "https://app.example.com", "resource_types": ["User"]})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let id = res.body["stream"]["id"].as_str().unwrap().to_owned();
        let start = res.body["stream"]["cursor"].as_i64().unwrap();
        let path = format!("/admin/api/v1/event-streams/{id}");
        let (app, auth) = (&app, &auth);
        let get = || app.send(Method::GET, &path, auth, None);
        let post = |action: &str, body: Option<serde_json::Value>| {
            let url = format!("{path}/{action}");
            async move { app.send(Method::POST, &url, auth, body).await }
        };

        // Three changes, a second apart, after the stream's cursor.
        let times = [
            "2030-01-01T00:00:01.000000Z",
            "2030-01-01T00:00:02.000000Z",
            "2030-01-01T00:00:03.000000Z",
        ];
        for (i, at) in times.iter().enumerate() {
            app.db
                .store()
                .write(|c| {
                    changes::record(
                        c,
                        &Actor::cli("test"),
                        at,
                        &[NewChange::new(
                            Event::UserPatched,
                            "User",
                            Some(&format!("u{i}")),
                        )],
                    )
                })
                .unwrap();
        }
        let positions: Vec<i64> = app
            .db
            .store()
            .read(|c| changes::read_after(c, start, 100))
            .unwrap()
            .iter()
            .filter(|row| row.resource_type == "User")
            .map(|row| row.position)
            .collect();
        assert_eq!(positions.len(), 3);
        let last = *positions.last().unwrap();

        let res = get().await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["state"], "active");
        assert_eq!(res.body["cursor"], start);
        assert_eq!(res.body["last_position"], last);
        assert_eq!(res.body["lag"], last - start);
        assert_eq!(res.body["oldest_pending_at"], times[0]);

        // Paused and resumed: the state changes, the backlog stays.
        let res = post("pause", None).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["state"], "paused");
        assert_eq!(get().await.body["state"], "paused");
        assert_eq!(get().await.body["lag"], last - start);
        let res = post("resume", None).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["state"], "active");
        assert_eq!(get().await.body["cursor"], start);

        // Replayed from a position: what follows it is pending.
        let res = post("replay", Some(json!({"position": positions[1]}))).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["cursor"], positions[1]);
        assert_eq!(res.body["lag"], last - positions[1]);
        assert_eq!(res.body["oldest_pending_at"], times[2]);

        // Replayed from a time (whole seconds, as an operator types it):
        // the changes recorded at or after it are pending again.
        let res = post("replay", Some(json!({"since": "2030-01-01T00:00:02Z"}))).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["cursor"], positions[1] - 1);
        assert_eq!(res.body["oldest_pending_at"], times[1]);
        let res = post("replay", Some(json!({"since": "2030-01-01T00:00:00.5Z"}))).await;
        assert_eq!(res.body["cursor"], positions[0] - 1);
        assert_eq!(res.body["oldest_pending_at"], times[0]);
        // After everything: nothing is pending.
        let res = post("replay", Some(json!({"since": "2031-01-01T00:00:00Z"}))).await;
        assert_eq!(
            (res.body["cursor"].as_i64(), res.body["lag"].as_i64()),
            (Some(last), Some(0))
        );
        assert!(res.body["oldest_pending_at"].is_null());
        // From the start of the log.
        let res = post("replay", Some(json!({"position": 0}))).await;
        assert_eq!(
            (res.body["cursor"].as_i64(), res.body["lag"].as_i64()),
            (Some(0), Some(last))
        );
    }
}
