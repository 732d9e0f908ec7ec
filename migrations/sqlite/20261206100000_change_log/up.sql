-- The change log: one row for every committed change (docs/EVENTS.md),
-- written in the same transaction as the change. `position` is the
-- cursor a reader follows: AUTOINCREMENT never reuses a position, even
-- after the retention purge empties the table, and SQLite's single
-- writer assigns positions in commit order.
CREATE TABLE change_log (
    position INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
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
