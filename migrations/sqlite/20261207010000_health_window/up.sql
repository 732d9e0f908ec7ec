-- The quarantine early warning's recent window: a credential's last
-- `health_window_requests` requests, or all of its requests of the last
-- `health_window_minutes` minutes when they are more
-- (scim_store::admin::health).
ALTER TABLE runtime_settings ADD COLUMN health_window_requests INTEGER NOT NULL DEFAULT 100;
ALTER TABLE runtime_settings ADD COLUMN health_window_minutes INTEGER NOT NULL DEFAULT 15;
