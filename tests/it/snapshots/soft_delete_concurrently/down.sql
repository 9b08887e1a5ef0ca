-- pgx VERSION: pattern "soft_delete" (down)
-- step 1 of 4: "column"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';
-- no-transaction
-- pgx VERSION: pattern "soft_delete" (down)
-- step 2 of 4: "live_index_1"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

DROP INDEX CONCURRENTLY IF EXISTS public.users_name_live_idx;
-- no-transaction
-- pgx VERSION: pattern "soft_delete" (down)
-- step 3 of 4: "live_index_2"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"
-- Runs outside a transaction: each statement commits on its own.

DROP INDEX CONCURRENTLY IF EXISTS public.users_email_live_idx;
-- pgx VERSION: pattern "soft_delete" (down)
-- step 4 of 4: "soft_delete"
-- table: "public"."users"
-- param column = "deleted_at"
-- param add_column = false
-- param deleted_by = null
-- param actor_setting = "app.user_id"
-- param actor_type = "bigint"
-- param intercept = false
-- param unique = ["none"]
-- param view = null
-- param hide = "none"
-- param role = null
-- param live_indexes = ["name","email"]
-- param concurrently = true
-- param soft_delete_schema = "soft_delete"
-- param lock_timeout = "100ms"

SET LOCAL lock_timeout = '100ms';

DROP FUNCTION public.users_purge(interval, integer);
DROP FUNCTION public.users_restore;
DROP VIEW public.users_live;
DROP TRIGGER soft_delete_cascade ON public.users;
