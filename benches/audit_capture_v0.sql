-- The capture function `pgx new audit` rendered before issue 11 (schema audit, actor bigint read
-- from app.user_id, the defaults), copied verbatim from templates/audit/_capture.sql.tera as
-- rendered at commit a26a695, so that benches/audit_variants.sh measures the same baseline
-- whatever the templates become. The script cuts it into pieces at the lines its anchors name
-- (BEGIN, the actor comment, the role comment, the OFFSET 0 comment, the DELETE branch): keep
-- them when editing.
CREATE OR REPLACE FUNCTION audit.capture() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET timezone = 'UTC'
    SET intervalstyle = 'postgres'
    SET extra_float_digits = 1
    SET bytea_output = 'hex'
    SET work_mem = '64MB'
    SET jit = off
AS $pgx$
DECLARE
    v_relid      oid;
    v_schema     text;
    v_table      text;
    v_partition  text;
    v_skip       boolean;
    v_excluded   text[];
    v_key        text[];
    v_non_key    text[];
    v_raw        text;
    v_actor      pg_catalog.int8;
    v_role       text;
    v_app        text;
    v_txid       xid8;
    v_at         timestamptz;
BEGIN
    -- The audited table (this one, or the nearest audited ancestor of this partition) and the
    -- column names to leave out and to key rows by. Partitions have the audited table's column
    -- names, so names resolved there fit the rows of either. Without a key (the primary key was
    -- dropped since), row_key is NULL. One query with no parameter but the table, so PL/pgSQL
    -- keeps one generic plan instead of planning it again on every statement.
    SELECT r.relid, n.nspname, c.relname, r.skip_unchanged, k.excluded, k.key,
           CASE WHEN k.key IS NOT NULL THEN k.non_key END
      INTO v_relid, v_schema, v_table, v_skip, v_excluded, v_key, v_non_key
      FROM (SELECT TG_RELID::regclass, 0::bigint
            UNION ALL
            SELECT * FROM pg_catalog.pg_partition_ancestors(TG_RELID) WITH ORDINALITY) AS a (relid, depth)
      JOIN audit.audited_table AS r ON r.relid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) r.relid
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      LEFT JOIN pg_catalog.pg_index AS pk ON pk.indrelid OPERATOR(pg_catalog.=) r.relid AND pk.indisprimary
     CROSS JOIN LATERAL (
            SELECT coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (r.excluded_columns)), '{}') AS excluded,
                   pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.=) ANY (coalesce(r.key_columns, pk.indkey::smallint[]))) AS key,
                   coalesce(pg_catalog.array_agg(t.attname::text) FILTER (WHERE t.attnum OPERATOR(pg_catalog.<>) ALL (coalesce(r.key_columns, pk.indkey::smallint[]))), '{}') AS non_key
              FROM pg_catalog.pg_attribute AS t
             WHERE t.attrelid OPERATOR(pg_catalog.=) r.relid AND t.attnum OPERATOR(pg_catalog.>) 0 AND NOT t.attisdropped) AS k
     ORDER BY a.depth
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE WARNING 'audit: %.% has audit triggers but is not registered in %; nothing was recorded',
            TG_TABLE_SCHEMA, TG_TABLE_NAME, 'audit.audited_table';
        RETURN NULL;
    END IF;
    IF v_relid OPERATOR(pg_catalog.<>) TG_RELID THEN
        v_partition := pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    END IF;

    -- Never fails the user's write: unset, reset, empty or malformed means no actor.
    v_raw := NULLIF(pg_catalog.btrim(pg_catalog.current_setting('app.user_id', true)), '');
    IF v_raw IS NOT NULL THEN
        BEGIN
            v_actor := v_raw::pg_catalog.int8;
        EXCEPTION WHEN data_exception THEN
            v_actor := NULL;
        END;
    END IF;
    -- The role the session acts as (SET ROLE included); current_user is this function's owner.
    v_role := pg_catalog.current_setting('role');
    IF v_role OPERATOR(pg_catalog.=) 'none' THEN
        v_role := SESSION_USER;
    END IF;
    v_app := NULLIF(pg_catalog.current_setting('application_name'), '');
    v_txid := pg_catalog.pg_current_xact_id();
    v_at := pg_catalog.now();

    -- OFFSET 0 keeps each row's JSON computed once: without it the planner pulls the subquery
    -- up and evaluates to_jsonb() once per reference.
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, new_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'INSERT',
               x.j OPERATOR(pg_catalog.-) v_non_key,
               x.j, v_actor, v_role, v_app
          FROM (SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) v_excluded AS j FROM new_rows AS t OFFSET 0) AS x;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- PostgreSQL appends each updated row's old and new versions to the two transition
        -- tables together (cross-partition moves included), so the n-th rows of both are the
        -- same row: pairing by position stays right when the key itself changes.
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_key, new_row, old_row, changed_columns, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'UPDATE',
               q.nj OPERATOR(pg_catalog.-) v_non_key,
               CASE WHEN q.changed OPERATOR(pg_catalog.&&) v_key THEN q.oj OPERATOR(pg_catalog.-) v_non_key END,
               q.nj, q.oj, q.changed, v_actor, v_role, v_app
          FROM (SELECT j.nj, j.oj,
                       ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(j.nj) AS k
                              WHERE j.nj OPERATOR(pg_catalog.->) k IS DISTINCT FROM j.oj OPERATOR(pg_catalog.->) k) AS changed
                  FROM (SELECT pg_catalog.to_jsonb(n.r) OPERATOR(pg_catalog.-) v_excluded AS nj,
                               pg_catalog.to_jsonb(o.r) OPERATOR(pg_catalog.-) v_excluded AS oj
                          FROM (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM new_rows AS t) AS n
                          JOIN (SELECT pg_catalog.row_number() OVER () AS rn, t AS r FROM old_rows AS t) AS o
                            ON o.rn OPERATOR(pg_catalog.=) n.rn
                        OFFSET 0) AS j
                 WHERE NOT v_skip OR j.nj OPERATOR(pg_catalog.<>) j.oj
                OFFSET 0) AS q;
    ELSIF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               row_key, old_row, actor, db_role, application_name)
        SELECT v_txid, v_at, v_schema, v_table, v_partition, 'DELETE',
               x.j OPERATOR(pg_catalog.-) v_non_key,
               x.j, v_actor, v_role, v_app
          FROM (SELECT pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.-) v_excluded AS j FROM old_rows AS t OFFSET 0) AS x;
    ELSE
        INSERT INTO audit.log (txid, logged_at, schema_name, table_name, partition_name, operation,
                               actor, db_role, application_name)
        VALUES (v_txid, v_at, v_schema, v_table, v_partition, 'TRUNCATE', v_actor, v_role, v_app);
    END IF;
    RETURN NULL;
END
$pgx$;
