-- An event stream belongs to one organization and carries only its
-- changes (docs/EVENTS.md): `change_log.org_id` is read through
-- `change_log_org (org_id, position)`. The streams that existed before
-- belong to the default organization (id 1).
ALTER TABLE event_streams ADD COLUMN org_id INTEGER NOT NULL DEFAULT 1;
CREATE INDEX event_streams_org ON event_streams (org_id, created_at);
