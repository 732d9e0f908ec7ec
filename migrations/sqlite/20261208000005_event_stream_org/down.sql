-- Back to streams of the whole log: another organization's streams go.
DELETE FROM event_acks WHERE stream_id IN (SELECT id FROM event_streams WHERE org_id <> 1);
DELETE FROM event_keys WHERE stream_id IN (SELECT id FROM event_streams WHERE org_id <> 1);
DELETE FROM event_streams WHERE org_id <> 1;
DROP INDEX event_streams_org;
ALTER TABLE event_streams DROP COLUMN org_id;
