-- The SCIM traffic of each identity-provider credential, as each replica
-- last flushed it (scim_store::admin::health): one row per (replica,
-- credential), its windows and failures as JSON in `state`. The admin
-- API merges the rows of every replica.
CREATE TABLE provisioning_traffic (
    replica_id TEXT NOT NULL,
    credential_kind TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    credential_name TEXT NULL,
    last_request_at TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (replica_id, credential_kind, credential_id)
);
-- The quarantine early warning's thresholds: the failure ratio (percent)
-- of a credential's recent requests, and the silence (minutes without a
-- request while synchronization is enabled) that raise a warning.
ALTER TABLE runtime_settings ADD COLUMN health_failure_percent INTEGER NOT NULL DEFAULT 40;
ALTER TABLE runtime_settings ADD COLUMN health_silence_minutes INTEGER NOT NULL DEFAULT 120;
