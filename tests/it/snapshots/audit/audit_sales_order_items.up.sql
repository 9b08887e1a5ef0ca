-- pgx 0.1.0: pattern "audit" (up)
-- table: "Sales"."Order Items"
-- param audit_schema = "audit"
-- param actor_setting = "app.user_id"
-- param actor_type = "uuid"
-- param key = []
-- param exclude = ["card_token"]
-- param skip_unchanged = true
-- param reader = "auditor"
-- param max_value_bytes = 1048576
-- param lock_timeout = "100ms"

-- Bounds every lock wait below (on the audited table above all), so a busy table makes the
-- migration fail and be retried instead of queueing every write behind it.
SET LOCAL lock_timeout = '100ms';

-- The infrastructure this migration uses: in a schema no other role can write to, installed
-- with the same settings, and recent enough.
DO $pgx$
DECLARE
    owner_oid oid;
    others text;
BEGIN
    SELECT n.nspowner INTO owner_oid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'audit';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema % does not exist: %', 'audit', 'install the audit infrastructure first: pgx new audit_install';
    END IF;
    -- Superusers can do anything anyway; any other owner could replace what pgx puts there.
    IF owner_oid <> pg_catalog.to_regrole(CURRENT_USER)
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = owner_oid) THEN
        RAISE EXCEPTION 'schema % belongs to role %, not to %: pgx keeps objects there that run with elevated rights, and the owner of a schema can drop and replace what is in it',
            'audit', pg_catalog.pg_get_userbyid(owner_oid), CURRENT_USER
            USING HINT = pg_catalog.format('ALTER SCHEMA %I OWNER TO %I (as a superuser), or use another schema', 'audit', CURRENT_USER);
    END IF;
    -- Roles other than the owner that can create objects in it, or act as its owner.
    SELECT pg_catalog.string_agg(DISTINCT w.name, ', ' ORDER BY w.name) INTO others
    FROM (
        SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS name, a.grantee
        FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
        WHERE n.nspname = 'audit' AND a.privilege_type = 'CREATE' AND a.grantee <> owner_oid
        UNION ALL
        SELECT r.rolname::text, r.oid FROM pg_catalog.pg_roles r
        WHERE r.oid <> owner_oid AND pg_catalog.pg_has_role(r.oid, owner_oid, 'MEMBER')
    ) w
    WHERE w.grantee = 0 OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = w.grantee);
    IF others IS NOT NULL THEN
        RAISE EXCEPTION 'schema % is writable by % besides its owner %: pgx keeps objects there that run with elevated rights, and a role that can create objects in a schema can plant look-alikes of them',
            'audit', others, pg_catalog.pg_get_userbyid(owner_oid)
            USING HINT = pg_catalog.format('REVOKE CREATE ON SCHEMA %I FROM ...; revoke memberships in role %I', 'audit', pg_catalog.pg_get_userbyid(owner_oid));
    END IF;
END
$pgx$;

DO $pgx$
DECLARE
    v_installed pg_catalog.jsonb;
BEGIN
    IF pg_catalog.to_regprocedure('audit.settings()') IS NULL THEN
        RAISE EXCEPTION 'audit: there is no audit infrastructure in schema %', 'audit'
            USING HINT = 'install it first: pgx new audit_install';
    END IF;
    v_installed := audit.settings();
    IF (v_installed OPERATOR(pg_catalog.->>) 'version')::pg_catalog.int4 OPERATOR(pg_catalog.<) 2 THEN
        RAISE EXCEPTION 'audit: the audit infrastructure in schema % is version %, and this migration needs version 2',
            'audit', v_installed OPERATOR(pg_catalog.->>) 'version'
            USING HINT = 'generate the upgrade migration first: pgx new audit_upgrade';
    END IF;
    IF (v_installed OPERATOR(pg_catalog.->>) 'actor_setting') IS DISTINCT FROM 'app.user_id'
       OR (v_installed OPERATOR(pg_catalog.->>) 'actor_type') IS DISTINCT FROM 'uuid' THEN
        RAISE EXCEPTION 'audit: the audit infrastructure in schema % was installed with settings %, and this migration asks for actor_setting %, actor_type %',
            'audit', v_installed, 'app.user_id', 'uuid'
            USING HINT = 'render this migration with the settings of the installed infrastructure';
    END IF;
END
$pgx$;

-- ---------------------------------------------------------------------------------------------
-- Audit of "Sales"."Order Items".
-- ---------------------------------------------------------------------------------------------

-- Fails here, before any trigger exists, when the table has no primary key and no key columns
-- are named, or a named column does not exist. Also audits the table's existing partitions.
SELECT audit.register_table(
    '"Sales"."Order Items"'::regclass,
    key_columns => ARRAY[]::text[],
    excluded_columns => ARRAY['card_token']::text[],
    skip_unchanged => true,
    max_value_bytes => 1048576);

-- One statement-level trigger per event: PostgreSQL allows transition tables only on
-- single-event triggers.
CREATE TRIGGER audit_insert
    AFTER INSERT ON "Sales"."Order Items"
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();

CREATE TRIGGER audit_update
    AFTER UPDATE ON "Sales"."Order Items"
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();

CREATE TRIGGER audit_delete
    AFTER DELETE ON "Sales"."Order Items"
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();

CREATE TRIGGER audit_truncate
    AFTER TRUNCATE ON "Sales"."Order Items"
    FOR EACH STATEMENT EXECUTE FUNCTION audit.capture();

-- The reader sees the whole log (every audited table), not only this table's history.
GRANT USAGE ON SCHEMA audit TO auditor;
GRANT SELECT ON TABLE audit.log, audit.audited_table TO auditor;
GRANT EXECUTE ON FUNCTION audit.history(text, text, jsonb), audit.history(regclass, jsonb) TO auditor;
