//! `GET /metrics` of the real binary, on SQLite and PostgreSQL: it needs
//! its credential, labels requests by route template (never an id), counts
//! SCIM outcomes with their `scimType`, and reports the database's Users,
//! Groups, sync switch and credentials as they are at the scrape.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

pub(crate) const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef0123456789";

/// One sample of the text format: `name{labels} value`.
#[derive(Debug)]
pub(crate) struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (label values are quoted, and may
/// hold `{`, `}`, `,` and spaces, as route templates and token names do).
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = match (line.find('{'), line.rfind('}')) {
            (Some(open), Some(close)) => {
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            _ => {
                let (name, value) = line.split_once(' ').unwrap();
                (name, "", value)
            }
        };
        let mut map = BTreeMap::new();
        let mut chars = labels.chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().unwrap()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            map.insert(key.trim_start_matches(',').to_owned(), value);
        }
        out.push(Sample {
            name: name.to_owned(),
            labels: map,
            value: value
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{line:?}: {e}")),
        });
    }
    out
}

/// The value of the one sample named `name` whose labels include
/// `labels`; `None` if there is none.
pub(crate) fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:#?}");
    found.first().map(|s| s.value)
}

/// `GET /metrics`: the status and the whole body (`Server::http` keeps
/// only a JSON object's braces).
fn get_metrics(server: &Server, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

pub(crate) fn scrape(server: &Server, token: Option<&str>) -> Vec<Sample> {
    let (status, body) = get_metrics(server, token);
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

fn user(name: &str, active: bool) -> String {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": active,
    })
    .to_string()
}

fn id_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn metrics_need_a_credential_and_report_traffic_and_the_database() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let env = vec![("SCIMD__DATABASE__URL".to_owned(), url.clone())];
        let settings = scimd::settings::Settings::load_from(None, env).unwrap();
        let (token_id, secret) = create_token(&url, "entra");
        let (idle_id, _) = create_token(&url, "idle");
        let store = scim_store::Store::connect(&settings.store_config()).unwrap();
        let hour_ago =
            scim_core::datetime::format(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
        let (_, admin_secret) = store
            .write(|c| {
                scim_store::touch_token(c, &idle_id, &hour_ago)?;
                scim_store::admin::create_admin_token(c, "prometheus", None, "tests")
            })
            .unwrap();
        let server = Server::start_with(&url, &[("SCIMD__METRICS__TOKEN", METRICS_TOKEN)]);

        // Its own credential, or an admin API token; nothing else.
        for token in [None, Some(secret.as_str()), Some("metrics-token-wrong")] {
            let (status, body) = get_metrics(&server, token);
            assert_eq!(status, 401, "{token:?}: {body}");
            assert!(body.contains("metrics.token"), "{body}");
        }
        scrape(&server, Some(&admin_secret));
        let samples = scrape(&server, Some(METRICS_TOKEN));
        assert_eq!(value(&samples, "scimd_sync_enabled", &[]), Some(0.0));

        // Refused while User Synchronization is disabled: 403, no scimType.
        let (status, _) = server.http("GET", "/scim/v2/Users", Some(&secret), None);
        assert_eq!(status, 403);
        enable_sync(&url);
        let samples = scrape(&server, Some(METRICS_TOKEN));
        assert_eq!(value(&samples, "scimd_sync_enabled", &[]), Some(1.0));

        store
            .write(|c| {
                let current =
                    scim_store::settings::get_runtime_settings(c, scim_store::OrgId::DEFAULT)?;
                let mut values = current.values.clone();
                values.deprovisioning = scim_store::settings::Deprovisioning::Soft;
                scim_store::settings::update_runtime_settings(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &values,
                    current.version,
                    "tests",
                )
            })
            .unwrap();
        let post = |body: &str| server.http("POST", "/scim/v2/Users", Some(&secret), Some(body));
        let (status, alice) = post(&user("alice", true));
        assert_eq!(status, 201, "{alice}");
        let alice = id_of(&alice);
        assert_eq!(post(&user("bob", false)).0, 201);
        let (status, carol) = post(&user("carol", true));
        assert_eq!(status, 201, "{carol}");
        let carol = id_of(&carol);
        let (status, dup) = post(&user("ALICE", true));
        assert_eq!(status, 409, "{dup}");
        let path = format!("/scim/v2/Users/{carol}");
        assert_eq!(server.http("DELETE", &path, Some(&secret), None).0, 204);
        let path = format!("/scim/v2/Users/{alice}");
        assert_eq!(server.http("GET", &path, Some(&secret), None).0, 200);
        let bad_patch = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"jump","path":"title","value":"x"}]}"#;
        let (status, body) = server.http("PATCH", &path, Some(&secret), Some(bad_patch));
        assert_eq!(status, 400, "{body}");
        let scim_type = serde_json::from_str::<Value>(&body).unwrap()["scimType"]
            .as_str()
            .unwrap()
            .to_owned();
        let group =
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"staff"}"#;
        let (status, body) = server.http("POST", "/scim/v2/Groups", Some(&secret), Some(group));
        assert_eq!(status, 201, "{body}");
        assert_eq!(server.http("GET", "/scim/v2/Users", None, None).0, 401);

        let (status, text) = get_metrics(&server, Some(METRICS_TOKEN));
        assert_eq!(status, 200, "{text}");
        assert!(
            !text.contains(&alice) && !text.contains(&carol),
            "a raw path became a label: {text}"
        );
        let s = parse(&text);
        let http = |route: &str, method: &str, status: &str| {
            value(
                &s,
                "scimd_http_requests_total",
                &[("route", route), ("method", method), ("status", status)],
            )
        };
        assert_eq!(http("/scim/v2/Users", "POST", "201"), Some(3.0));
        assert_eq!(http("/scim/v2/Users", "POST", "409"), Some(1.0));
        assert_eq!(http("/scim/v2/Users/{id}", "GET", "200"), Some(1.0));
        assert_eq!(http("/scim/v2/Users/{id}", "DELETE", "204"), Some(1.0));
        assert_eq!(http("/scim/v2/Users", "GET", "403"), Some(1.0));
        assert_eq!(http("/healthz", "GET", "200"), Some(1.0));
        assert_eq!(
            value(
                &s,
                "scimd_http_request_duration_seconds_count",
                &[("route", "/scim/v2/Users"), ("method", "POST")]
            ),
            Some(4.0)
        );
        let scim = |resource: &str, operation: &str, outcome: &str, scim_type: &str| {
            value(
                &s,
                "scimd_scim_requests_total",
                &[
                    ("resource", resource),
                    ("operation", operation),
                    ("outcome", outcome),
                    ("scim_type", scim_type),
                ],
            )
        };
        assert_eq!(scim("User", "create", "success", "none"), Some(3.0));
        assert_eq!(
            scim("User", "create", "client_error", "uniqueness"),
            Some(1.0)
        );
        assert_eq!(scim("User", "patch", "client_error", &scim_type), Some(1.0));
        assert_eq!(scim("User", "list", "client_error", "none"), Some(2.0));
        assert_eq!(scim("Group", "create", "success", "none"), Some(1.0));
        let credential = |id: &str, outcome: &str| {
            value(
                &s,
                "scimd_scim_credential_requests_total",
                &[("credential", id), ("outcome", outcome)],
            )
        };
        assert_eq!(credential(&token_id, "success"), Some(6.0));
        assert_eq!(credential(&token_id, "failure"), Some(3.0));
        assert_eq!(credential("none", "failure"), Some(1.0));

        // The gauges are the database's, counted at the scrape.
        let users = |state: &str| value(&s, "scimd_users", &[("state", state)]);
        assert_eq!(users("active"), Some(1.0));
        assert_eq!(users("suspended"), Some(1.0));
        assert_eq!(users("deleted"), Some(1.0));
        let (live, deleted) = store
            .read(|c| {
                Ok((
                    scim_store::count_users(c)?,
                    scim_store::count_deleted_users(c)?,
                ))
            })
            .unwrap();
        assert_eq!((live, deleted), (2, 1));
        assert_eq!(value(&s, "scimd_groups", &[]), Some(1.0));
        let age = value(
            &s,
            "scimd_credential_last_use_age_seconds",
            &[("kind", "scim_token"), ("id", &idle_id), ("name", "idle")],
        )
        .unwrap();
        assert!((3600.0..4200.0).contains(&age), "{age}");

        // The store's own series.
        let backend = if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        };
        assert!(
            value(
                &s,
                "scimd_store_write_batch_size_count",
                &[("backend", backend)]
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert!(
            value(
                &s,
                "scimd_store_pool_wait_seconds_count",
                &[("pool", "read")]
            )
            .is_some_and(|n| n >= 1.0),
            "{text}"
        );
        assert!(
            s.iter()
                .any(|x| x.name == "scimd_store_queue_wait_seconds_count" && x.value >= 1.0),
            "{text}"
        );

        // Disabled again: the next scrape says so.
        let out = run(scimd(&url).args(["sync", "disable"]));
        assert!(out.status.success());
        let samples = scrape(&server, Some(METRICS_TOKEN));
        assert_eq!(value(&samples, "scimd_sync_enabled", &[]), Some(0.0));
    }
}

/// An event stream's lag and pending changes are gauges read at scrape
/// time; a stream that has caught up reports 0.
#[test]
fn event_streams_report_their_lag() {
    use scim_store::events::streams::{create_stream, Alg, Delivery, Mode, NewStream};
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let env = vec![("SCIMD__DATABASE__URL".to_owned(), url.clone())];
        let settings = scimd::settings::Settings::load_from(None, env).unwrap();
        let (_, secret) = create_token(&url, "entra");
        let store = scim_store::Store::connect(&settings.store_config()).unwrap();
        let now = scim_core::datetime::format(time::OffsetDateTime::now_utc());
        let stream = store
            .write(|c| {
                create_stream(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &NewStream {
                        name: "app".into(),
                        delivery: Delivery::Poll,
                        endpoint_url: None,
                        authorization: None,
                        audience: "https://app.example.com".into(),
                        issuer: None,
                        event_types: vec![],
                        resource_types: vec![],
                        mode: Mode::Full,
                        alg: Alg::Es256,
                    },
                    &now,
                )
            })
            .unwrap()
            .stream;
        let server = Server::start_with(&url, &[("SCIMD__METRICS__TOKEN", METRICS_TOKEN)]);
        let labels = [("stream", stream.id.as_str()), ("name", "app")];
        let samples = scrape(&server, Some(METRICS_TOKEN));
        assert_eq!(
            value(&samples, "scimd_event_stream_pending_changes", &labels),
            Some(0.0)
        );
        assert_eq!(
            value(&samples, "scimd_event_delivery_lag_seconds", &labels),
            Some(0.0)
        );
        enable_sync(&url);
        let body = user("alice", true);
        let (status, _) = server.http("POST", "/scim/v2/Users", Some(&secret), Some(&body));
        assert_eq!(status, 201);
        let samples = scrape(&server, Some(METRICS_TOKEN));
        // Enabling sync and creating the user, none acknowledged yet.
        let last = store.read(scim_store::changes::last_position).unwrap();
        assert!(last >= stream.cursor + 2);
        assert_eq!(
            value(&samples, "scimd_event_stream_pending_changes", &labels),
            Some((last - stream.cursor) as f64)
        );
        // The oldest pending change (enabling sync) was recorded before
        // this scrape, within this test.
        let lag = value(&samples, "scimd_event_delivery_lag_seconds", &labels);
        assert!(lag.is_some_and(|lag| lag > 0.0 && lag < 600.0), "{lag:?}");
        assert_eq!(
            value(&samples, "scimd_event_stream_consecutive_failures", &labels),
            Some(0.0)
        );
    }
}

/// Every organization's sync switch, credentials and event streams are
/// reported, labelled with its slug.
#[test]
fn every_organization_reports_its_switch_credentials_and_streams() {
    use scim_store::events::streams::{create_stream, Alg, Delivery, Mode, NewStream};
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let env = vec![("SCIMD__DATABASE__URL".to_owned(), url.clone())];
        let settings = scimd::settings::Settings::load_from(None, env).unwrap();
        let out = run(scimd(&url).args(["org", "create", "acme", "--name", "Acme"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = dir.path().join("idp.pem");
        std::fs::write(&pem, IDP_PEM).unwrap();
        let out = run(scimd(&url)
            .args([
                "--org",
                "acme",
                "saml",
                "set",
                "--entity-id",
                "https://sts.windows.net/t/",
            ])
            .args(["--sso-url", "https://login.microsoftonline.com/t/saml2"])
            .arg("--certificate")
            .arg(&pem));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(scimd(&url).args(["--org", "acme", "sync", "enable", "--accept-cautions"]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let store = scim_store::Store::connect(&settings.store_config()).unwrap();
        let acme = store
            .read(|c| scim_store::organizations::find_organization(c, "acme"))
            .unwrap()
            .unwrap()
            .id;
        let token = scim_admin::service::create_scim_token(
            &store,
            &scim_store::changes::Actor::cli("tests").in_org(acme),
            &scim_admin::model::CreateTokenRequest {
                name: "acme entra".into(),
                expires_at: None,
            },
        )
        .unwrap()
        .token
        .id;
        let hour_ago =
            scim_core::datetime::format(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
        let now = scim_core::datetime::format(time::OffsetDateTime::now_utc());
        let stream = store
            .write(|c| {
                scim_store::touch_token(c, &token, &hour_ago)?;
                create_stream(
                    c,
                    acme,
                    &NewStream {
                        name: "acme app".into(),
                        delivery: Delivery::Poll,
                        endpoint_url: None,
                        authorization: None,
                        audience: "https://app.acme.example".into(),
                        issuer: None,
                        event_types: vec![],
                        resource_types: vec![],
                        mode: Mode::Full,
                        alg: Alg::Es256,
                    },
                    &now,
                )
            })
            .unwrap()
            .stream;
        let server = Server::start_with(&url, &[("SCIMD__METRICS__TOKEN", METRICS_TOKEN)]);
        let samples = scrape(&server, Some(METRICS_TOKEN));
        let sync = |org: &str| value(&samples, "scimd_sync_enabled", &[("org", org)]);
        assert_eq!((sync("default"), sync("acme")), (Some(0.0), Some(1.0)));
        let age = value(
            &samples,
            "scimd_credential_last_use_age_seconds",
            &[("org", "acme"), ("kind", "scim_token"), ("id", &token)],
        )
        .unwrap();
        assert!((3600.0..4200.0).contains(&age), "{age}");
        assert_eq!(
            value(
                &samples,
                "scimd_event_stream_pending_changes",
                &[("org", "acme"), ("stream", &stream.id)]
            ),
            Some(0.0)
        );
    }
}

#[test]
fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
    let server = Server::start_with(&url, &[("SCIMD__METRICS__ENABLED", "false")]);
    let (status, _) = get_metrics(&server, Some(METRICS_TOKEN));
    assert_eq!(status, 404);
}

#[test]
fn a_short_metrics_token_stops_startup() {
    let out = run(scimd("sqlite://x.db")
        .env("SCIMD__METRICS__TOKEN", "short")
        .arg("migrate"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics.token"), "{err}");
}
