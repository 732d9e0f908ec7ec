//! Per-credential rate limiting (`scim_server::rate_limit`): over its
//! budget a credential gets 429 with `Retry-After` and a SCIM error, other
//! credentials are not affected, the budget refills with time (a fake
//! clock, advanced by the test), and without a limit nothing is limited.

use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::{header, Method, StatusCode};
use governor::clock::FakeRelativeClock;
use scim_server::rate_limit::{RateLimit, RateLimiter};
use scim_server::ScimConfig;
use scim_store::testing::{backends, TestDb};

use crate::{assert_scim_error, Res, TestApp};

/// An app whose credentials may each send `per_second` requests a second,
/// `burst` at once, on `clock`.
fn limited(db: TestDb, per_second: u32, burst: u32, clock: &FakeRelativeClock) -> TestApp {
    let limit = RateLimit {
        per_second: NonZeroU32::new(per_second).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    };
    TestApp::with_config(
        db,
        ScimConfig {
            rate_limiter: Some(RateLimiter::with_clock(limit, clock.clone())),
            ..ScimConfig::default()
        },
    )
}

fn limiter(app: &TestApp) -> &RateLimiter {
    app.api.config().rate_limiter.as_ref().unwrap()
}

/// A second token of the same app.
fn other_token(app: &TestApp) -> String {
    app.db
        .store()
        .write(|c| scim_store::create_token(c, "other", None))
        .unwrap()
        .1
}

async fn get_with(app: &TestApp, token: &str, path: &str) -> Res {
    let req = actix_web::test::TestRequest::default()
        .method(Method::GET)
        .uri(path)
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
    app.call(req).await
}

fn assert_throttled(res: &Res, retry_after: &str) {
    assert_scim_error(res, 429, None);
    assert_eq!(res.header("retry-after"), Some(retry_after), "{res:?}");
    let detail = res.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("slow down") && detail.contains("retry in"),
        "{detail}"
    );
}

#[actix_web::test]
async fn a_credential_over_its_budget_gets_429_until_it_refills() {
    for db in backends() {
        let clock = FakeRelativeClock::default();
        // One request a second, three at once.
        let app = limited(db, 1, 3, &clock);
        let backend = app.backend();
        for i in 0..3 {
            let res = app.get("/scim/v2/Users").await;
            assert_eq!(res.status, StatusCode::OK, "{backend} #{i}: {}", res.body);
        }
        let res = app.get("/scim/v2/Users").await;
        assert_throttled(&res, "1");
        assert_eq!(
            res.body["detail"],
            "too many requests with this bearer token; slow down and retry in 1 second"
        );
        // Writes are counted alike, and refused before they touch anything.
        let res = app
            .post(
                "/scim/v2/Users",
                serde_json::json!({"userName": "throttled@example.com"}),
            )
            .await;
        assert_throttled(&res, "1");

        // Another credential has a budget of its own.
        let other = other_token(&app);
        let res = get_with(&app, &other, "/scim/v2/Users").await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);

        // 300 ms later the next request is still 700 ms away: rounded up.
        clock.advance(Duration::from_millis(300));
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
        clock.advance(Duration::from_millis(700));
        let res = app
            .get("/scim/v2/Users?filter=userName%20eq%20%22throttled@example.com%22")
            .await;
        assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
        // The refused POST created nothing.
        assert_eq!(res.body["totalResults"], 0, "{backend}");
        assert_throttled(&app.get("/scim/v2/Users").await, "1");

        // An idle credential gets its whole burst back, no more.
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
        }
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
    }
}

#[actix_web::test]
async fn the_wait_is_what_the_budget_needs_in_whole_seconds() {
    for db in backends() {
        let clock = FakeRelativeClock::default();
        // A burst of 10, refilled at 2 a second: 500 ms a request.
        let app = limited(db, 2, 10, &clock);
        for _ in 0..10 {
            assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
        }
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
        clock.advance(Duration::from_millis(499));
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
        clock.advance(Duration::from_millis(1));
        assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn authentication_comes_first_and_unauthenticated_requests_spend_nothing() {
    for db in backends() {
        let clock = FakeRelativeClock::default();
        let app = limited(db, 1, 1, &clock);
        // No token, a malformed header, an unknown token: 401, however
        // many, and no credential state is created.
        for _ in 0..5 {
            let res = app
                .call(actix_web::test::TestRequest::get().uri("/scim/v2/Users"))
                .await;
            assert_scim_error(&res, 401, None);
            let res = get_with(&app, "scimd_unknown", "/scim/v2/Users").await;
            assert_scim_error(&res, 401, None);
        }
        assert_eq!(limiter(&app).tracked_credentials(), 0);
        assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
        assert_eq!(limiter(&app).tracked_credentials(), 1);
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
        // An unknown token is still 401 (not 429) while the real one is
        // throttled.
        let res = get_with(&app, "scimd_unknown", "/scim/v2/Users").await;
        assert_scim_error(&res, 401, None);
    }
}

#[actix_web::test]
async fn a_throttled_request_gets_429_before_the_sync_gate() {
    for db in backends() {
        let clock = FakeRelativeClock::default();
        let app = limited(db, 1, 1, &clock);
        app.set_sync(false);
        let res = app.get("/scim/v2/Users").await;
        assert_scim_error(&res, 403, None);
        // The gate's 403 spent the budget; the next request is refused
        // without asking the database.
        assert_throttled(&app.get("/scim/v2/Users").await, "1");
        clock.advance(Duration::from_secs(1));
        assert_scim_error(&app.get("/scim/v2/Users").await, 403, None);
    }
}

#[actix_web::test]
async fn without_a_limit_nothing_is_limited() {
    for db in backends() {
        let app = TestApp::new(db);
        assert!(app.api.config().rate_limiter.is_none());
        let svc = app.service().await;
        for i in 0..200 {
            let res = crate::call(
                &svc,
                app.request(Method::GET, "/scim/v2/ServiceProviderConfig"),
            )
            .await;
            assert_eq!(res.status, StatusCode::OK, "#{i}: {}", res.body);
        }
    }
}
