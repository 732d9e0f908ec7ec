ALTER TABLE runtime_settings DROP COLUMN health_window_minutes;
ALTER TABLE runtime_settings DROP COLUMN health_window_requests;
