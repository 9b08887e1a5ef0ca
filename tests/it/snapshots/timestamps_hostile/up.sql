-- pgx VERSION: pattern "timestamps" (up)
-- table: "Sales Dept"."orders; drop table x"
-- param created_column = "select"
-- param updated_column = "\"quoted\""
-- param adopt = []
-- param import_role = null
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

ALTER TABLE "Sales Dept"."orders; drop table x"
    ADD COLUMN "select" timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN """quoted""" timestamptz NOT NULL DEFAULT pg_catalog.now();

-- The trigger, not the writer, decides both times: created at INSERT (and never moved), updated
-- at INSERT and at every UPDATE.
CREATE FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        NEW."select" := pg_catalog.now();
    ELSE
        NEW."select" := OLD."select";
    END IF;
    NEW."""quoted""" := pg_catalog.now();
    RETURN NEW;
END
$pgx$;

REVOKE ALL ON FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""() FROM PUBLIC;

-- Creating a partition (CREATE TABLE ... PARTITION OF, ATTACH PARTITION) clones the trigger,
-- which needs EXECUTE on its function: the table's owner gets it, PUBLIC does not.
DO $pgx$
DECLARE
    owner name;
BEGIN
    SELECT r.rolname INTO STRICT owner
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
    WHERE c.oid OPERATOR(pg_catalog.=) '"Sales Dept"."orders; drop table x"'::regclass;
    IF owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I',
                                  '"Sales Dept"."orders; drop table x_set_""quoted"""()'::pg_catalog.regprocedure, owner);
    END IF;
END
$pgx$;

CREATE TRIGGER "orders; drop table x_""quoted"""
    BEFORE INSERT OR UPDATE ON "Sales Dept"."orders; drop table x"
    FOR EACH ROW EXECUTE FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""();
