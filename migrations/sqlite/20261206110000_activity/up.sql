-- How many days the change log keeps a row before the retention purge
-- (`scimd serve` in the background, `scimd purge`) deletes it.
ALTER TABLE runtime_settings ADD COLUMN change_log_retention_days INTEGER NOT NULL DEFAULT 90;
-- The Activity page's event filter, and a timeline's membership rows
-- (`group.members_added` / `group.members_removed`, newest first).
CREATE INDEX change_log_event ON change_log (event, position);
