-- Issue 23: webhook chains are claimed under short leases with a per-client cap counted from the
-- live leases of every process; this index holds just the leased rows (those in flight, and a
-- killed process's until they are claimed again), so counting them never scans the backlog.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (client_id)
  WHERE status = 'PENDING' AND locked_until IS NOT NULL;
