-- pgx 0.1.0: pattern "audit" (down)
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

-- Stops auditing "Sales"."Order Items" and its partitions. The audit infrastructure, the reader's grants and
-- the recorded history stay: removing them is a separate migration (pgx new audit_uninstall).
-- pgx check: keeps schema audit
SET LOCAL lock_timeout = '100ms';

DROP TRIGGER audit_truncate ON "Sales"."Order Items";
DROP TRIGGER audit_delete ON "Sales"."Order Items";
DROP TRIGGER audit_update ON "Sales"."Order Items";
DROP TRIGGER audit_insert ON "Sales"."Order Items";

SELECT audit.unregister_table('"Sales"."Order Items"'::regclass);
