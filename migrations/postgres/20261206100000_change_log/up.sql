-- The change log: one row for every committed change (docs/EVENTS.md),
-- written in the same transaction as the change. `position` is the
-- cursor a reader follows. A sequence alone would not do: a transaction
-- that drew a smaller position could commit after one that drew a larger
-- one, and a reader past the larger would miss it. So a transaction
-- takes the change log's advisory lock (`pg_advisory_xact_lock`) before
-- drawing positions, as its last statements, and holds it to its commit:
-- positions become visible in order (scim-store `changes::record`).
CREATE TABLE change_log (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NULL,
    resource_version BIGINT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NULL,
    actor_name TEXT NULL,
    request_id TEXT NULL,
    client_address TEXT NULL,
    detail TEXT NOT NULL,
    data TEXT NULL
);
-- The retention purge and the Activity page's time filter.
CREATE INDEX change_log_at ON change_log (at);
-- A resource's timeline.
CREATE INDEX change_log_resource ON change_log (resource_id, position);
