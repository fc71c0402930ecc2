-- Per-user usage aggregates maintained with each transaction (issue 8): the KYC gate's 30-day totals
-- and monitoring's 24-hour total, velocity count and "has history" read a few bucket rows instead
-- of summing the user's transactions. Transactions count from creation until they end REFUSED,
-- CANCELED or ERROR (then they are taken out again).
--   period 'minute' / 'hour': the bucket is the start of that minute / hour (velocity / sums);
--   period 'all': one row per user and type since the beginning (bucket = epoch).
CREATE TABLE user_usage (
  client_id  text NOT NULL,
  user_id    text NOT NULL,
  period     text NOT NULL CHECK (period IN ('minute', 'hour', 'all')),
  bucket     timestamptz NOT NULL,
  type       text NOT NULL,
  usd_cents  numeric(38,0) NOT NULL,
  count      bigint NOT NULL,
  PRIMARY KEY (client_id, user_id, period, bucket, type)
);
CREATE INDEX user_usage_purge ON user_usage (period, bucket);

INSERT INTO user_usage (client_id, user_id, period, bucket, type, usd_cents, count)
SELECT client_id, user_id, 'minute', date_trunc('minute', created_at), type, sum(usd_value), count(*)
  FROM transactions
 WHERE status NOT IN ('REFUSED', 'CANCELED', 'ERROR') AND created_at > now() - interval '2 days'
 GROUP BY 1, 2, 4, 5;
INSERT INTO user_usage (client_id, user_id, period, bucket, type, usd_cents, count)
SELECT client_id, user_id, 'hour', date_trunc('hour', created_at), type, sum(usd_value), count(*)
  FROM transactions
 WHERE status NOT IN ('REFUSED', 'CANCELED', 'ERROR') AND created_at > now() - interval '32 days'
 GROUP BY 1, 2, 4, 5;
INSERT INTO user_usage (client_id, user_id, period, bucket, type, usd_cents, count)
SELECT client_id, user_id, 'all', timestamptz '1970-01-01 00:00:00+00', type, sum(usd_value), count(*)
  FROM transactions
 WHERE status NOT IN ('REFUSED', 'CANCELED', 'ERROR')
 GROUP BY 1, 2, 5;
