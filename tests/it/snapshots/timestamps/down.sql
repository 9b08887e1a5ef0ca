-- pgx VERSION: pattern "timestamps" (down)
-- table: "public"."orders"
-- param created_column = "created_at"
-- param updated_column = "updated_at"
-- param adopt = []
-- param import_role = null
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

DROP TRIGGER orders_updated_at ON public.orders;

DROP FUNCTION public.orders_set_updated_at();

ALTER TABLE public.orders
    DROP COLUMN updated_at,
    DROP COLUMN created_at;
