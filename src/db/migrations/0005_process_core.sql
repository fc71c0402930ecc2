-- The core every face stands on: one table of provider steps run by one claim loop, an audit
-- trail, and the sandbox bank's own record of incoming transfers (for reconciliation).

-- Every call outside the database (card charge, refund, payout, payout status, bank return, …) is a
-- step: recorded before the call with its idempotency key, claimed with a lease, retried with
-- backoff, ended in a terminal state that staff can see. A FAILED step never got an answer; staff
-- retry it, or resolve it (RESOLVED) with what they learned from the provider.
CREATE TABLE steps (
  id               uuid PRIMARY KEY,
  client_id        text NOT NULL REFERENCES clients (id),
  kind             text NOT NULL,
  process_type     text NOT NULL,
  process_id       text NOT NULL,
  idempotency_key  text NOT NULL,
  status           text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'RESOLVED', 'CANCELED')),
  input            jsonb NOT NULL DEFAULT '{}',
  result           jsonb,
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  UNIQUE (client_id, idempotency_key)
);
CREATE INDEX steps_due ON steps (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX steps_process ON steps (client_id, process_type, process_id);
CREATE INDEX steps_failed ON steps (client_id, updated_at) WHERE status = 'FAILED';

-- Who did what: every staff action and every change of a business process's state, written in the
-- transaction that made the change.
CREATE TABLE audit_log (
  id           uuid PRIMARY KEY,
  client_id    text,
  actor_kind   text NOT NULL CHECK (actor_kind IN ('client', 'user', 'admin', 'staff', 'system', 'provider')),
  actor_id     text,
  action       text NOT NULL,
  entity_type  text NOT NULL,
  entity_id    text NOT NULL,
  before       jsonb,
  after        jsonb,
  request_id   text,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity ON audit_log (client_id, entity_type, entity_id, created_at);

-- The sandbox bank's record of money that arrived at the transit account (one row per bank
-- transfer; the same notification twice is one transfer), and of what it sent back.
CREATE TABLE sandbox_bank_incoming (
  transfer_id        text PRIMARY KEY,
  payment_reference  text NOT NULL,
  amount             numeric(38,0) NOT NULL,
  currency           text NOT NULL,
  received_at        timestamptz NOT NULL DEFAULT now(),
  return_key         text UNIQUE,
  returned_at        timestamptz
);
CREATE INDEX sandbox_bank_incoming_reference ON sandbox_bank_incoming (payment_reference);

-- Provider work now lives in `steps`; the transaction row keeps only its business state.
DROP INDEX transactions_provider_step;
ALTER TABLE transactions DROP COLUMN provider_step;
ALTER TABLE transactions DROP COLUMN locked_until;

-- KYC polling: failed attempts are counted, so one assessment whose provider keeps failing ends
-- ERROR instead of being retried for ever.
ALTER TABLE user_assessments ADD COLUMN poll_failures integer NOT NULL DEFAULT 0;

-- A user's event sequence belongs to the outbox (the webhooks module), not to the users table.
CREATE TABLE event_sequences (
  client_id      text NOT NULL,
  user_id        text NOT NULL,
  last_sequence  bigint NOT NULL,
  PRIMARY KEY (client_id, user_id)
);
INSERT INTO event_sequences (client_id, user_id, last_sequence)
  SELECT client_id, id, event_sequence FROM users WHERE event_sequence > 0;
ALTER TABLE users DROP COLUMN event_sequence;
