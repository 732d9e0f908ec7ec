//! Hostile strings through the SCIM API on every backend (issue 18): NUL
//! (`\u0000`), astral-plane characters, lone surrogates escaped in JSON
//! (`"\ud800"`, which is not Unicode), values past PostgreSQL's B-tree
//! entry limit (about 2,704 bytes) up to 100 KB, and ordinary strings, sent
//! through create, read, filter and PATCH of Users and Groups. No answer
//! is a 5xx, and every backend gives the same answers (status and body,
//! without the ids and `meta` the server assigns).

use std::cell::Cell;

use actix_web::http::{header, Method, StatusCode};
use futures_util::future::join_all;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::{assert_scim_error, call, TestApp};

/// A generated string, as the text of a JSON string literal (quotes
/// included): a lone surrogate can only be written this way.
#[derive(Clone)]
struct Lit(String);

/// Long values are shown by their length and start.
impl std::fmt::Debug for Lit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start: String = self.0.chars().take(40).collect();
        write!(f, "Lit({} bytes: {start}…)", self.0.len())
    }
}

impl Lit {
    fn of(s: &str) -> Self {
        Lit(serde_json::to_string(s).unwrap())
    }

    /// The literal with `prefix` (plain ASCII) put in front of its value.
    fn prefixed(&self, prefix: &str) -> Lit {
        Lit(format!("\"{prefix}{}", &self.0[1..]))
    }

    /// The decoded string, if the literal is one (a lone surrogate is not).
    fn decoded(&self) -> Option<String> {
        serde_json::from_str(&self.0).ok()
    }
}

fn hostile() -> impl Strategy<Value = Lit> {
    let word = "[a-zA-Z0-9._@-]{1,24}";
    prop_oneof![
        word.prop_map(|s| Lit::of(&s)),
        // NUL anywhere in an otherwise ordinary value.
        ("[a-z]{0,8}", "[a-z]{0,8}").prop_map(|(a, b)| Lit::of(&format!("{a}\0{b}"))),
        // Astral-plane characters (4 bytes in UTF-8), mixed case.
        (
            prop::collection::vec(prop::char::range('\u{10000}', '\u{10FFFF}'), 1..6),
            "[A-Za-z]{0,4}"
        )
            .prop_map(|(cs, w)| Lit::of(&format!("{w}{}", cs.into_iter().collect::<String>()))),
        // Characters whose lowercase differs in length (İ, ẞ, Ω).
        "[İẞΩa-z]{1,12}".prop_map(|s| Lit::of(&s)),
        // A lone surrogate, escaped: valid JSON syntax, but not a string.
        ("[a-z]{0,8}", 0xD800u32..0xE000).prop_map(|(a, u)| Lit(format!("\"{a}\\u{u:04x}\""))),
        // Past the B-tree entry limit but inside the filter limit, and 100 KB.
        (
            any::<u64>(),
            prop_oneof![Just(5_000usize), Just(100_000usize)]
        )
            .prop_map(|(seed, n)| Lit::of(&noise(seed, n))),
    ]
}

/// `len` pseudo-random characters of the base64 alphabet from `seed`. A
/// long value must not be repetitive: PostgreSQL compresses index entries,
/// and a repeated pattern would fit in a B-tree entry however long it is.
fn noise(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // xorshift64* (any non-zero state).
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 58;
            char::from(ALPHABET[usize::try_from(r).unwrap()])
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Case {
    user_name: Lit,
    email: Lit,
    external_id: Lit,
    patched: Lit,
}

fn cases() -> impl Strategy<Value = Case> {
    (hostile(), hostile(), hostile(), hostile()).prop_map(
        |(user_name, email, external_id, patched)| Case {
            user_name,
            email,
            external_id,
            patched,
        },
    )
}

/// One answer: what was asked, the status, the body without server ids.
type Answer = (String, u16, Value);

/// `body` without what the server assigns: `id`, `meta`, `$ref`, any id
/// (a UUID: member and group values, also of earlier cases' resources),
/// and `ids` inside other strings (error details).
fn scrub(body: &Value, ids: &[String]) -> Value {
    match body {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "meta" | "$ref"))
                .map(|(k, v)| (k.clone(), scrub(v, ids)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| scrub(v, ids)).collect()),
        Value::String(s) if uuid::Uuid::try_parse(s).is_ok() => Value::String("<id>".into()),
        Value::String(s) => {
            let mut s = s.clone();
            for id in ids {
                s = s.replace(id.as_str(), "<id>");
            }
            Value::String(s)
        }
        other => other.clone(),
    }
}

/// `v` as JSON, cut to a readable length for failure messages.
fn short(v: &impl std::fmt::Display) -> String {
    let s = v.to_string();
    if s.len() <= 300 {
        return s;
    }
    let cut: String = s.chars().take(300).collect();
    format!("{cut}… ({} bytes)", s.len())
}

/// A SearchRequest (RFC 7644 §3.4.3) for the filter `attr op <lit>`: in a
/// body, as a 100 KB value does not fit in a URL.
fn search(resource: &str, attr: &str, op: &str, lit: &Lit) -> (String, String) {
    let filter = format!("{attr} {op} {}", lit.0);
    (
        format!("/scim/v2/{resource}/.search"),
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": filter,
        })
        .to_string(),
    )
}

/// Sends one case through `app`; returns its answers, after checking what
/// must hold on any backend (no 5xx; a created user is read back and found
/// by `eq` on its full userName).
async fn run(app: &TestApp, n: usize, case: &Case) -> Result<Vec<Answer>, TestCaseError> {
    let mut ids = Vec::new();
    let mut answers = Vec::new();
    let user_name = case.user_name.prefixed(&format!("c{n:04}-"));
    let user_body = format!(
        r#"{{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": {},
            "externalId": {}, "emails": [{{"value": {}, "type": "work"}}],
            "x509Certificates": [{{"value": {}}}], "title": {}}}"#,
        user_name.0, case.external_id.0, case.email.0, case.email.0, case.patched.0
    );
    let group_name = case.email.prefixed(&format!("g{n:04}-"));

    let mut requests: Vec<(String, Method, String, Option<String>)> = vec![(
        "create user".into(),
        Method::POST,
        "/scim/v2/Users".into(),
        Some(user_body.clone()),
    )];
    let mut i = 0;
    while i < requests.len() {
        let (label, method, path, body) = requests[i].clone();
        i += 1;
        let mut req = app.request(method, &path);
        if let Some(body) = body {
            req = req
                .insert_header(("content-type", "application/scim+json"))
                .set_payload(body);
        }
        let res = app.call(req).await;
        prop_assert!(
            res.status.as_u16() < 500,
            "{label} on {}: {} {}",
            app.backend(),
            res.status,
            short(&res.body)
        );
        if label == "create user" && res.status == StatusCode::CREATED {
            let id = res.body["id"].as_str().unwrap().to_owned();
            ids.push(id.clone());
            let expected = user_name.decoded();
            prop_assert!(
                res.body["userName"].as_str() == expected.as_deref(),
                "{label} on {}: the userName read back differs",
                app.backend()
            );
            let user = format!("/scim/v2/Users/{id}");
            requests.extend([
                (
                    "again".into(),
                    Method::POST,
                    "/scim/v2/Users".into(),
                    Some(user_body.clone()),
                ),
                ("get".into(), Method::GET, user.clone(), None),
                (
                    "patch user".into(),
                    Method::PATCH,
                    user.clone(),
                    Some(format!(
                        r#"{{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [
                              {{"op": "replace", "path": "displayName", "value": {}}},
                              {{"op": "add", "path": "emails", "value": [{{"value": {}}}]}},
                              {{"op": "replace", "value": {{"nickName": {}}}}},
                              {{"op": "remove", "path": {}}}]}}"#,
                        case.patched.0,
                        case.patched.0,
                        case.external_id.0,
                        serde_json::to_string(&format!("emails[value eq {}]", case.email.0))
                            .unwrap()
                    )),
                ),
                (
                    "create group".into(),
                    Method::POST,
                    "/scim/v2/Groups".into(),
                    Some(format!(
                        r#"{{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                            "displayName": {}, "externalId": {},
                            "members": [{{"value": "{id}"}}]}}"#,
                        group_name.0, case.external_id.0
                    )),
                ),
            ]);
        }
        if label == "create group" && res.status == StatusCode::CREATED {
            let id = res.body["id"].as_str().unwrap().to_owned();
            ids.push(id.clone());
            requests.push((
                "patch group".into(),
                Method::PATCH,
                format!("/scim/v2/Groups/{id}"),
                Some(format!(
                    r#"{{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [
                          {{"op": "replace", "path": "displayName", "value": {}}},
                          {{"op": "add", "path": "members", "value": [{{"value": {}}}]}}]}}"#,
                    case.patched.prefixed(&format!("p{n:04}-")).0,
                    case.email.0
                )),
            ));
        }
        if label == "get" && res.status == StatusCode::OK {
            let expected = user_name.decoded();
            prop_assert!(
                res.body["userName"].as_str() == expected.as_deref(),
                "{label} on {}: the userName read back differs",
                app.backend()
            );
        }
        answers.push((label, res.status.as_u16(), scrub(&res.body, &ids)));
    }

    // Filters and lookups, whether or not the creates succeeded.
    let searches = [
        search("Users", "userName", "eq", &user_name),
        search("Users", "userName", "sw", &case.user_name),
        search("Users", "emails.value", "eq", &case.email),
        search("Users", "emails", "co", &case.email),
        search("Users", "x509Certificates.value", "eq", &case.email),
        search("Users", "externalId", "eq", &case.external_id),
        search("Users", "title", "ew", &case.patched),
        search("Users", "displayName", "eq", &case.patched),
        search("Groups", "displayName", "eq", &group_name),
        search("Groups", "externalId", "eq", &case.external_id),
        search("Groups", "members.value", "eq", &case.email),
    ];
    let lookups = [
        "/scim/v2/Users/a%00b".to_owned(),
        "/scim/v2/Groups/%00".to_owned(),
        format!("/scim/v2/Users/{}", "x".repeat(5_000)),
    ];
    let requests = searches
        .into_iter()
        .map(|(path, body)| (Method::POST, path, Some(body)))
        .chain(lookups.into_iter().map(|path| (Method::GET, path, None)));
    for (k, (method, path, body)) in requests.enumerate() {
        let res = app
            .send(
                method,
                &path,
                body.map(|b| serde_json::from_str(&b).unwrap()),
            )
            .await;
        prop_assert!(
            res.status.as_u16() < 500,
            "search {k} on {}: {} {}",
            app.backend(),
            res.status,
            short(&res.body)
        );
        // `eq` on the full userName finds exactly the user created.
        if k == 0 && answers[0].1 == 201 && res.status == StatusCode::OK {
            prop_assert!(
                res.body["totalResults"] == 1,
                "userName eq on {}: {}",
                app.backend(),
                short(&res.body)
            );
        }
        let mut body = scrub(&res.body, &ids);
        // List order among equal creation times follows the ids, which
        // differ between backends: compare the resources as a set.
        if let Some(Value::Array(resources)) = body.get_mut("Resources") {
            resources.sort_by_key(Value::to_string);
        }
        answers.push((format!("search {k}"), res.status.as_u16(), body));
    }
    Ok(answers)
}

/// Generated hostile strings through create, filter and PATCH: no 5xx, and
/// every backend answers the same.
#[test]
fn hostile_strings_get_the_same_answers_on_every_backend() {
    let apps = TestApp::all();
    let system = actix_web::rt::System::new();
    let config = Config {
        cases: 32,
        // CI never writes regression files into the repository.
        failure_persistence: None,
        // Each case sends about 40 requests with values up to 100 KB.
        max_shrink_iters: 32,
        ..Config::default()
    };
    let counter = Cell::new(0usize);
    let mut runner = TestRunner::new(config);
    let result = runner.run(&cases(), |case| {
        let n = counter.get();
        counter.set(n + 1);
        system.block_on(async {
            let mut first: Option<(String, Vec<Answer>)> = None;
            for app in &apps {
                let answers = run(app, n, &case).await?;
                match &first {
                    None => first = Some((app.backend(), answers)),
                    Some((backend, expected)) => {
                        prop_assert_eq!(expected.len(), answers.len());
                        for (want, got) in expected.iter().zip(&answers) {
                            if want != got {
                                return Err(TestCaseError::fail(format!(
                                    "{backend} and {} answer {} differently: {} {} / {} {}",
                                    app.backend(),
                                    want.0,
                                    want.1,
                                    short(&want.2),
                                    got.1,
                                    short(&got.2)
                                )));
                            }
                        }
                    }
                }
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A value longer than a PostgreSQL B-tree entry may hold, even
/// compressed (6,000 pseudo-random characters), ending in `last`.
fn long(seed: u64, last: char) -> String {
    let mut s = noise(seed, 6_000);
    s.push(last);
    s
}

/// userName and Group displayName stay unique case-insensitively when
/// they are too long to be index keys: racing creates of one long userName
/// (in two cases) have one winner, and so do two long displayNames that
/// differ only in case.
#[actix_web::test]
async fn long_unique_values_stay_unique_under_races() {
    for app in TestApp::all() {
        let svc = app.service().await;
        let name = long(1, 'x');
        let (upper, lower) = (name.to_uppercase(), name.to_lowercase());
        let requests = (0..16).map(|i| {
            let body = json!({"userName": if i % 2 == 0 { &upper } else { &lower }});
            call(
                &svc,
                app.request(Method::POST, "/scim/v2/Users")
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(body.to_string()),
            )
        });
        let statuses: Vec<u16> = join_all(requests)
            .await
            .iter()
            .map(|r| r.status.as_u16())
            .collect();
        let created = statuses.iter().filter(|s| **s == 201).count();
        let conflicts = statuses.iter().filter(|s| **s == 409).count();
        assert_eq!((created, conflicts), (1, 15), "{}", app.backend());

        let name = long(2, 'q');
        let (upper, lower) = (name.to_uppercase(), name.to_lowercase());
        let requests = [&upper, &lower].map(|name| {
            call(
                &svc,
                app.request(Method::POST, "/scim/v2/Groups")
                    .insert_header((header::CONTENT_TYPE, "application/scim+json"))
                    .set_payload(json!({"displayName": name}).to_string()),
            )
        });
        let mut statuses: Vec<u16> = join_all(requests)
            .await
            .iter()
            .map(|r| r.status.as_u16())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{}", app.backend());
    }
}

/// A value past the B-tree limit is stored, read back and matched exactly
/// by `eq` (a value that differs in its last character does not match),
/// and by `co`, `sw` and `ew`: a certificate in x509Certificates (caseExact,
/// RFC 7643 §8.7.1), an email, an externalId.
#[actix_web::test]
async fn long_values_store_read_back_and_filter_exactly() {
    for app in TestApp::all() {
        let cert = long(3, '=');
        let email = long(4, '@').to_lowercase();
        let external_id = long(5, '1');
        let id = app
            .create_user(json!({
                "userName": "certified",
                "externalId": external_id,
                "emails": [{"value": email, "type": "work"}],
                "x509Certificates": [{"value": cert}],
            }))
            .await;
        let res = app.get(&format!("/scim/v2/Users/{id}")).await;
        assert_eq!(res.body["x509Certificates"][0]["value"], cert.as_str());
        assert_eq!(res.body["emails"][0]["value"], email.as_str());

        let mut near = cert.clone();
        near.pop();
        near.push('A');
        let cases = [
            (format!("x509Certificates.value eq {}", json!(cert)), 1),
            (format!("x509Certificates.value eq {}", json!(near)), 0),
            // caseExact: another case is another certificate.
            (
                format!("x509Certificates.value eq {}", json!(cert.to_lowercase())),
                0,
            ),
            // caseExact false: matched in any case.
            (
                format!("emails.value eq {}", json!(email.to_uppercase())),
                1,
            ),
            (format!("emails co {}", json!(&email[100..200])), 1),
            (format!("emails.value sw {}", json!(&email[..3000])), 1),
            (format!("emails.value ew {}", json!(&email[3000..])), 1),
            (format!("externalId eq {}", json!(external_id)), 1),
            (
                format!("externalId eq {}", json!(external_id.to_uppercase())),
                0,
            ),
        ];
        for (filter, expected) in cases {
            let res = app
                .post(
                    "/scim/v2/Users/.search",
                    json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": filter,
                    }),
                )
                .await;
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{}: {}",
                app.backend(),
                short(&res.body)
            );
            assert_eq!(
                res.body["totalResults"],
                expected,
                "{}: {}",
                app.backend(),
                &filter[..60]
            );
        }
    }
}

/// U+0000 is refused where it could reach SQL, the same on every backend:
/// attribute values (`invalidValue`, naming the attribute), filter strings
/// (`invalidFilter`), member values, and ids in the path (404, as for any
/// unknown id).
#[actix_web::test]
async fn nul_is_refused_the_same_on_every_backend() {
    for app in TestApp::all() {
        let user = app.create_user(json!({"userName": "plain"})).await;
        let res = app
            .post("/scim/v2/Users", json!({"userName": "a\u{0}b"}))
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.starts_with("userName contains the NUL"), "{detail}");
        let res = app
            .patch(
                &format!("/scim/v2/Users/{user}"),
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "add", "path": "title", "value": "x\u{0}"}]}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains("title contains the NUL"), "{detail}");
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22a%5Cu0000%22")
            .await;
        assert_scim_error(&res, 400, Some("invalidFilter"));
        let res = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "g", "members": [{"value": "\u{0}"}]}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        for path in ["/scim/v2/Users/%00", "/scim/v2/Groups/a%00"] {
            let res = app.get(path).await;
            assert_scim_error(&res, 404, None);
            let res = app.delete(path).await;
            assert_scim_error(&res, 404, None);
        }
    }
}
