-- Issue 23: webhook chains are claimed under short leases with a per-client cap counted from the
-- live leases of every process; this index holds just the leased rows (those in flight, and a
-- killed process's until they are claimed again), so counting them never scans the backlog.
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (client_id)
  WHERE status = 'PENDING' AND locked_until IS NOT NULL;
-- A claim takes each client's earliest due heads through this index, so that one client's large
-- due backlog (a slow receiver) is never walked to find another client's deliveries.
CREATE INDEX webhook_deliveries_client_due ON webhook_deliveries (client_id, next_attempt_at)
  WHERE status = 'PENDING';
