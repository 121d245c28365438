-- 0004_horizon_by_backend: PostgreSQL's read horizon ties a transaction's locks together by
-- backend pid. SQLite has no read horizon; the file keeps the migration lists in step.
SELECT 1;
