//! `scimd org …` and `--org`: a second organization set up from the
//! command line, served at /scim/v2/o/{slug} by a real scimd process, on
//! both backends.

use crate::{databases, run, scimd, Server, IDP_PEM};

/// Runs `scimd ARGS` against `url`, asserting success; returns stdout.
fn ok(url: &str, args: &[&str]) -> String {
    let out = run(scimd(url).args(args));
    assert!(
        out.status.success(),
        "scimd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn secret_of(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("scimd_"))
        .expect("secret printed")
        .to_owned()
}

#[test]
fn an_organization_is_set_up_from_the_cli_and_served_apart() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("idp.pem");
    std::fs::write(&pem, IDP_PEM).unwrap();
    let pem = pem.to_str().unwrap().to_owned();
    for (url, _db) in databases(dir.path()) {
        let out = ok(&url, &["org", "create", "beta", "--name", "Beta Inc"]);
        assert!(out.contains("/scim/v2/o/beta"), "{out}");
        // Its own token, SAML and switch, through --org.
        let beta = secret_of(&ok(
            &url,
            &["--org", "beta", "token", "create", "--name", "Entra"],
        ));
        let default = secret_of(&ok(&url, &["token", "create", "--name", "Entra"]));
        ok(
            &url,
            &[
                "--org",
                "beta",
                "saml",
                "set",
                "--entity-id",
                "https://sts.windows.net/b/",
                "--sso-url",
                "https://login.microsoftonline.com/b/saml2",
                "--certificate",
                &pem,
            ],
        );
        ok(
            &url,
            &["--org", "beta", "sync", "enable", "--accept-cautions"],
        );
        let status = ok(&url, &["--org", "beta", "sync", "status", "--json"]);
        assert!(status.contains("\"enabled\": true"), "{status}");
        // The default organization's switch is still off.
        let status = ok(&url, &["sync", "status", "--json"]);
        assert!(status.contains("\"enabled\": false"), "{status}");
        let tokens = ok(&url, &["--org", "beta", "token", "list"]);
        assert_eq!(tokens.matches("Entra").count(), 1, "{tokens}");
        // An unknown organization is a clear error.
        let out = run(scimd(&url).args(["--org", "nope", "token", "list"]));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("scimd org list"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list = ok(&url, &["org", "list"]);
        assert!(
            list.contains("default") && list.contains("beta\tactive\t-\tBeta Inc"),
            "{list}"
        );

        let server = Server::start_with(
            &url,
            &[("SCIMD__METRICS__TOKEN", crate::metrics::METRICS_TOKEN)],
        );
        // Test Connection against the organization's Tenant URL.
        let (status, body) = server.http(
            "GET",
            "/scim/v2/o/beta/Users?filter=userName%20eq%20%22b3c1a2f9%22",
            Some(&beta),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.http(
            "POST",
            "/scim/v2/o/beta/Users",
            Some(&beta),
            Some(r#"{"userName":"cli@example.com"}"#),
        );
        assert_eq!(status, 201, "{body}");
        assert!(body.contains("/scim/v2/o/beta/Users/"), "{body}");
        // Its requests are counted by route template and operation, as
        // the default organization's are (not as unmatched paths).
        let samples = crate::metrics::scrape(&server, Some(crate::metrics::METRICS_TOKEN));
        let http = |route: &str, method: &str, status: &str| {
            crate::metrics::value(
                &samples,
                "scimd_http_requests_total",
                &[("route", route), ("method", method), ("status", status)],
            )
        };
        assert_eq!(http("/scim/v2/o/{org}/Users", "POST", "201"), Some(1.0));
        assert_eq!(http("/scim/v2/o/{org}/Users", "GET", "200"), Some(1.0));
        assert_eq!(
            crate::metrics::value(
                &samples,
                "scimd_scim_requests_total",
                &[
                    ("resource", "User"),
                    ("operation", "create"),
                    ("outcome", "success")
                ]
            ),
            Some(1.0)
        );
        // Neither token opens the other's URL; the default one is off.
        assert_eq!(
            server
                .http("GET", "/scim/v2/o/beta/Users", Some(&default), None)
                .0,
            401
        );
        assert_eq!(
            server.http("GET", "/scim/v2/Users", Some(&beta), None).0,
            401
        );
        assert_eq!(
            server.http("GET", "/scim/v2/Users", Some(&default), None).0,
            403
        );
        drop(server);

        ok(&url, &["org", "suspend", "beta"]);
        let server = Server::start(&url);
        assert_eq!(
            server
                .http("GET", "/scim/v2/o/beta/Users", Some(&beta), None)
                .0,
            403
        );
        drop(server);
        ok(&url, &["org", "resume", "beta"]);

        // Deleting needs the slug again, and takes everything with it.
        let out = run(scimd(&url).args(["org", "delete", "beta", "--confirm", "bet"]));
        assert!(!out.status.success());
        ok(&url, &["org", "delete", "beta", "--confirm", "beta"]);
        let list = ok(&url, &["org", "list", "--json"]);
        assert!(!list.contains("beta"), "{list}");
        let out = run(scimd(&url).args(["org", "delete", "default", "--confirm", "default"]));
        assert!(!out.status.success());
    }
}
