-- pgx VERSION: pattern "timestamps" (down)
-- table: "Sales Dept"."orders; drop table x"
-- param created_column = "select"
-- param updated_column = "\"quoted\""
-- param adopt = []
-- param import_role = null
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

DROP TRIGGER "orders; drop table x_""quoted""" ON "Sales Dept"."orders; drop table x";

DROP FUNCTION "Sales Dept"."orders; drop table x_set_""quoted"""();

ALTER TABLE "Sales Dept"."orders; drop table x"
    DROP COLUMN """quoted""",
    DROP COLUMN "select";
