ALTER TABLE runtime_settings DROP COLUMN health_silence_minutes;
ALTER TABLE runtime_settings DROP COLUMN health_failure_percent;
DROP TABLE provisioning_traffic;
