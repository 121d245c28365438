-- 0002_tenant_horizon: on PostgreSQL this migration gives each tenant its own commit-order read
-- horizon. SQLite has a single writer, so position order is commit order and every committed
-- event is readable at once: nothing changes here. The file keeps the two backends' migration
-- lists in step.
SELECT 1;
