-- Custom schema extensions of the User (docs/SCIM.md "Custom schema
-- extensions"): one row per extension, its RFC 7643 §7 definition as JSON
-- text. The values themselves live in each user's resource JSON under the
-- extension URN and in user_values (attr "<urn>:<name>[.<sub>]"), like the
-- enterprise extension's.
CREATE TABLE schema_extensions (
    id TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
