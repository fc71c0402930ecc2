-- Platform API, part 1: client settings and keys, Ferry's signing keys, request replay cache,
-- users and their PII (apart), KYC assessments, user tokens, the transactional outbox and webhook deliveries.

ALTER TABLE clients
  ADD COLUMN webhook_url text,
  ADD COLUMN webhook_encryption_key jsonb,
  ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}',
  ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';

-- A client's public signing keys (several at once: rotation). kid = RFC 7638 thumbprint.
CREATE TABLE client_signing_keys (
  client_id   text NOT NULL REFERENCES clients (id),
  kid         text NOT NULL,
  jwk         jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'REVOKED')),
  expires_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz,
  PRIMARY KEY (client_id, kid)
);

-- Ferry's own RS512 keys for webhook signatures; private halves encrypted with the master key.
CREATE TABLE ferry_signing_keys (
  kid                    text PRIMARY KEY,
  public_jwk             jsonb NOT NULL,
  encrypted_private_jwk  text NOT NULL,
  status                 text NOT NULL CHECK (status IN ('CURRENT', 'PREVIOUS', 'RETIRED')),
  created_at             timestamptz NOT NULL DEFAULT now(),
  retired_at             timestamptz
);
CREATE UNIQUE INDEX ferry_signing_keys_one_current ON ferry_signing_keys (status) WHERE status = 'CURRENT';

-- Signatures already accepted, kept for the ±300 s window: a second use is a replay.
CREATE TABLE request_signatures (
  client_id        text NOT NULL,
  signature_hash   text NOT NULL,
  expires_at       timestamptz NOT NULL,
  PRIMARY KEY (client_id, signature_hash)
);
CREATE INDEX request_signatures_expiry ON request_signatures (expires_at);

-- End users. No PII here: that lives in user_pii, encrypted.
CREATE TABLE users (
  client_id       text NOT NULL REFERENCES clients (id),
  id              text NOT NULL CHECK (id ~ '^[A-Za-z0-9_-]{3,255}$'),
  type            text NOT NULL CHECK (type IN ('PERSON', 'BUSINESS')),
  status          text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE', 'BLOCKED')),
  status_reason   text,
  tier            smallint NOT NULL DEFAULT 0 CHECK (tier BETWEEN 0 AND 5),
  event_sequence  bigint NOT NULL DEFAULT 0,
  pii_version     integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id)
);
CREATE INDEX users_created ON users (client_id, created_at, id);

CREATE TABLE user_pii (
  client_id   text NOT NULL,
  user_id     text NOT NULL,
  ciphertext  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, user_id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);

CREATE TABLE user_assessments (
  client_id           text NOT NULL,
  request_id          text NOT NULL,
  user_id             text NOT NULL,
  status              text NOT NULL CHECK (status IN ('PENDING', 'UNDER_REVIEW', 'REQUESTED_MORE_INFORMATION', 'ACCEPTED', 'REFUSED', 'ERROR')),
  tier                smallint NOT NULL DEFAULT 0,
  refusal_reason      text,
  intended_usd_value  numeric(38,0),
  provider            text NOT NULL,
  provider_reference  text,
  result_due_at       timestamptz,
  locked_until        timestamptz,
  solicited           boolean NOT NULL DEFAULT true,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  completed_at        timestamptz,
  PRIMARY KEY (client_id, request_id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE INDEX user_assessments_user ON user_assessments (client_id, user_id, created_at DESC);
CREATE INDEX user_assessments_due ON user_assessments (result_due_at) WHERE status = 'PENDING';

-- One-time user tokens: consumed by one atomic UPDATE … WHERE used_at IS NULL.
CREATE TABLE user_tokens (
  jti         text PRIMARY KEY,
  client_id   text NOT NULL REFERENCES clients (id),
  user_id     text,
  method      text NOT NULL,
  path        text NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_tokens_expiry ON user_tokens (expires_at);

-- The transactional outbox: an event is written in the same transaction as the change it reports.
CREATE TABLE outbox_events (
  id          text PRIMARY KEY,
  client_id   text NOT NULL REFERENCES clients (id),
  user_id     text,
  sequence    bigint,
  type        text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_client ON outbox_events (client_id, created_at);

CREATE TABLE webhook_deliveries (
  id               text PRIMARY KEY,
  event_id         text NOT NULL REFERENCES outbox_events (id),
  client_id        text NOT NULL,
  status           text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  locked_until     timestamptz,
  last_status_code integer,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at DESC);

CREATE TABLE webhook_attempts (
  delivery_id   text NOT NULL REFERENCES webhook_deliveries (id),
  attempt       integer NOT NULL,
  started_at    timestamptz NOT NULL,
  duration_ms   integer NOT NULL,
  status_code   integer,
  error         text,
  PRIMARY KEY (delivery_id, attempt)
);
