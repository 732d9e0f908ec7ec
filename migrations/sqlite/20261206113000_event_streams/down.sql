DROP TABLE event_acks;
DROP TABLE event_keys;
DROP TABLE event_streams;
