-- gatehouse metadata schema, version 9 (PostgreSQL): change counters.
-- change_counters holds one row per watched table; every write to that
-- table bumps its row in the same transaction (a statement trigger), so a
-- replica learns whether anything changed by reading one row, instead of
-- reloading the table (issue 12 §1). Other tables may add their own row
-- and trigger in later migrations, reusing bump_change_counter.

CREATE TABLE change_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO change_counters (name, value) VALUES ('mounts', 0);

CREATE FUNCTION bump_change_counter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = TG_ARGV[0];
    RETURN NULL;
END
$$;

CREATE TRIGGER mounts_changed AFTER INSERT OR UPDATE OR DELETE ON mounts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_counter('mounts');

-- Lookups by externalId (SCIM "externalId eq", which provisioning clients
-- send before creating a user or group) read an index, not the table.
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX groups_external_id ON groups (external_id);
