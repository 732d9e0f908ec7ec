//! The SCIM rate limit through the real binary: configured by
//! `scim.rate_limit_*`, one budget per process whatever worker thread
//! serves a connection, and 429 with `Retry-After` over it.

use std::time::Instant;

use super::{create_token, databases, enable_sync, raw, Server};

#[test]
fn a_credential_has_one_budget_per_process() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in databases(dir.path()) {
        let (_, secret) = create_token(&url, "Entra ID");
        enable_sync(&url);
        // Two workers (`Server`); each request on a connection of its own,
        // which actix hands to the workers in turn.
        let server = Server::start_with(
            &url,
            &[
                ("SCIMD__SCIM__RATE_LIMIT_PER_SECOND", "1"),
                ("SCIMD__SCIM__RATE_LIMIT_BURST", "4"),
            ],
        );
        let head = format!("GET /scim/v2/Users HTTP/1.1\r\nAuthorization: Bearer {secret}\r\n");
        let start = Instant::now();
        let mut passed = 0;
        let mut throttled = Vec::new();
        for _ in 0..16 {
            let (status, headers, body) = raw(&server, &head, "");
            match status {
                200 => passed += 1,
                429 => throttled.push((headers, body)),
                other => panic!("{url}: {other} {body}"),
            }
        }
        let elapsed = start.elapsed().as_secs();
        // The burst and one more a second: a budget per worker would let
        // through 8 at once.
        assert!(
            passed <= 4 + elapsed + 1,
            "{url}: {passed} requests passed in {elapsed} s"
        );
        let (headers, body) = throttled.first().expect("some requests were throttled");
        let headers = headers.to_ascii_lowercase();
        assert!(headers.contains("retry-after: 1\r\n"), "{headers}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], "429");
        assert_eq!(
            body["detail"],
            "too many requests with this bearer token; slow down and retry in 1 second"
        );
    }
}
