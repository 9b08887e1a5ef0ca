-- pgx VERSION: pattern "timestamps" (up)
-- table: "public"."orders"
-- param created_column = "created_at"
-- param updated_column = "updated_at"
-- param adopt = []
-- param import_role = null
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

ALTER TABLE public.orders
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT pg_catalog.now();

-- The trigger, not the writer, decides both times: created at INSERT (and never moved), updated
-- at INSERT and at every UPDATE.
CREATE FUNCTION public.orders_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        NEW.created_at := pg_catalog.now();
    ELSE
        NEW.created_at := OLD.created_at;
    END IF;
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$pgx$;

REVOKE ALL ON FUNCTION public.orders_set_updated_at() FROM PUBLIC;

-- Creating a partition (CREATE TABLE ... PARTITION OF, ATTACH PARTITION) clones the trigger,
-- which needs EXECUTE on its function: the table's owner gets it, PUBLIC does not.
DO $pgx$
DECLARE
    owner name;
BEGIN
    SELECT r.rolname INTO STRICT owner
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
    WHERE c.oid OPERATOR(pg_catalog.=) 'public.orders'::regclass;
    IF owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %I',
                                  'public.orders_set_updated_at()'::pg_catalog.regprocedure, owner);
    END IF;
END
$pgx$;

CREATE TRIGGER orders_updated_at
    BEFORE INSERT OR UPDATE ON public.orders
    FOR EACH ROW EXECUTE FUNCTION public.orders_set_updated_at();
