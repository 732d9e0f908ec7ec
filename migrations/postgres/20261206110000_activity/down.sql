DROP INDEX change_log_event;
ALTER TABLE runtime_settings DROP COLUMN change_log_retention_days;
