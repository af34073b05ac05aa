-- gatehouse metadata schema, version 9 (SQLite): change counters.
-- change_counters holds one row per watched table; every write to that
-- table bumps its row in the same transaction (triggers), so a replica
-- learns whether anything changed by reading one row, instead of
-- reloading the table (issue 12 §1). Other tables may add their own row
-- and triggers in later migrations.

CREATE TABLE change_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

INSERT INTO change_counters (name, value) VALUES ('mounts', 0);

CREATE TRIGGER mounts_changed_insert AFTER INSERT ON mounts
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'mounts';
END;

CREATE TRIGGER mounts_changed_update AFTER UPDATE ON mounts
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'mounts';
END;

CREATE TRIGGER mounts_changed_delete AFTER DELETE ON mounts
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'mounts';
END;

-- Lookups by externalId (SCIM "externalId eq", which provisioning clients
-- send before creating a user or group) read an index, not the table.
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX groups_external_id ON groups (external_id);
