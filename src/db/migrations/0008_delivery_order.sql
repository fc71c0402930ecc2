-- Webhook deliveries keep their user's order (issue 8): a delivery carries its event's user and
-- sequence, and only the earliest undelivered one of a user is sent (its later ones wait for it).
ALTER TABLE webhook_deliveries ADD COLUMN user_id text;
ALTER TABLE webhook_deliveries ADD COLUMN sequence bigint;
UPDATE webhook_deliveries d SET user_id = e.user_id, sequence = e.sequence
  FROM outbox_events e WHERE e.id = d.event_id AND e.user_id IS NOT NULL;
CREATE INDEX webhook_deliveries_user_pending ON webhook_deliveries (client_id, user_id, sequence)
  WHERE status = 'PENDING' AND user_id IS NOT NULL;
