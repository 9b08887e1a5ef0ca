-- pgx VERSION: pattern "timestamps" (up)
-- table: "public"."orders"
-- param created_column = "created_at"
-- param updated_column = "updated_at"
-- param adopt = []
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

ALTER TABLE public.orders
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT pg_catalog.now();

CREATE FUNCTION public.orders_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $pgx$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END
$pgx$;

REVOKE ALL ON FUNCTION public.orders_set_updated_at() FROM PUBLIC;

CREATE TRIGGER orders_updated_at
    BEFORE UPDATE ON public.orders
    FOR EACH ROW EXECUTE FUNCTION public.orders_set_updated_at();
