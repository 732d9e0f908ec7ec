-- A User's rows carry its externalId in a column of its own (the
-- `sub_id.externalId` of its events, docs/EVENTS.md), and `data` holds
-- what RFC 9967 §2.4 puts in a full event's `data`: the resource for a
-- create or a replace, the PATCH operations for a patch, and nothing for
-- an activate or a deactivate, which have no `data`.
ALTER TABLE change_log ADD COLUMN external_id TEXT NULL;
UPDATE change_log SET external_id = json_extract(data, '$.externalId')
WHERE data IS NOT NULL AND resource_type = 'User';
-- Their `data` was the user after the change, not PATCH operations: such
-- a row now goes out as a notice.
UPDATE change_log SET data = NULL
WHERE event IN ('user.patched', 'user.activated', 'user.suspended');
