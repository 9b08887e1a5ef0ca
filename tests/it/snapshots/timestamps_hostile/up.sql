-- pgx VERSION: pattern "timestamps" (up)
-- table: "Sales Dept"."orders; drop table x"
-- param created_column = "select"
-- param updated_column = "\"quoted\""
-- param adopt = []
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

ALTER TABLE "Sales Dept"."orders; drop table x"
    ADD COLUMN "select" timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN """quoted""" timestamptz NOT NULL DEFAULT pg_catalog.now();

CREATE FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    NEW."""quoted""" := pg_catalog.now();
    RETURN NEW;
END
$pgx$;

REVOKE ALL ON FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""() FROM PUBLIC;

CREATE TRIGGER "orders; drop table x_""quoted"""
    BEFORE UPDATE ON "Sales Dept"."orders; drop table x"
    FOR EACH ROW EXECUTE FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""();
