-- Issue 23: the platform admin's HTTP Basic password is guessed at most FERRY_ADMIN_MAX_FAILURES
-- times per source address in a window: each guess takes its place here before the scrypt
-- comparison (so a burst is no exception), a wrong one keeps it, the one that fills the count locks
-- that source for the window. Keyed by source, not by account: the one admin account cannot be
-- locked out by someone else's guesses.
CREATE TABLE admin_auth_failures (
  source text PRIMARY KEY,
  failures integer NOT NULL,
  window_until timestamptz NOT NULL,
  locked_until timestamptz
);
