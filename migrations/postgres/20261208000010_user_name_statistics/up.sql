-- Statistics on md5(user_name_ci), the expression the userName index
-- `users_user_name_ci (org_id, md5(user_name_ci)) WHERE deleted_at IS NULL`
-- is on. PostgreSQL gathers statistics on the expressions of an index only
-- when the index is not partial, so without these it estimated the
-- batched `userName eq` lookup (`md5(user_name_ci) IN (…32 values)`) at
-- 0.5% of the users per value, costed its generic plan far above the
-- custom ones, and planned the statement again at every execution (about
-- 0.35 ms each; docs/BENCHMARKS.md, sixth session). ANALYZE and autovacuum
-- fill them in.
CREATE STATISTICS users_user_name_md5 ON (md5(user_name_ci)) FROM users;
-- A directory that already holds users gets them now. An empty one (a
-- fresh install) is left to autovacuum as it fills: statistics taken of an
-- empty table made the planner treat it as empty while the identity
-- provider's first cycle filled it (POST /Users cost PostgreSQL twice the
-- CPU until the next automatic ANALYZE).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users OFFSET 999) THEN
        ANALYZE users;
    END IF;
END
$$;
