-- The SAML AuthnRequests the console's "Sign in with SAML" sent and that
-- no response answered yet, each bound to the browser that started it
-- (the SHA-256 of a random secret in that browser's cookie): a response's
-- InResponseTo must name one of them, and answers it once (SAML 2.0
-- Profiles §4.1.4.3). In the database, so that the response may reach
-- any replica; expired rows are deleted whenever a sign-in starts.
CREATE TABLE saml_requests (
    id TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX saml_requests_browser_hash ON saml_requests (browser_hash);
CREATE INDEX saml_requests_expires_at ON saml_requests (expires_at);
