-- PostgreSQL only (statistics on md5(user_name_ci) for its planner; see
-- migrations/postgres). SQLite's userName index is on user_name_ci itself,
-- and its planner takes it for the lookup without statistics. Kept so that both backends list the
-- same migrations.
SELECT 1;
