-- Saved payment methods of users. Card numbers and bank account numbers are sealed (AES-256-GCM);
-- only last4, BIN, brand, expiry and a keyed fingerprint are kept in the clear.

CREATE TABLE payment_methods (
  client_id       text NOT NULL,
  id              text NOT NULL,
  user_id         text NOT NULL,
  type            text NOT NULL CHECK (type IN ('CREDIT_CARD', 'BANK_ACCOUNT', 'CRYPTO')),
  fingerprint     text NOT NULL,
  sealed_details  text NOT NULL,
  last4           text,
  bin             text,
  brand           text,
  exp_month       smallint CHECK (exp_month BETWEEN 1 AND 12),
  exp_year        smallint,
  bank_code       text,
  currency        text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE INDEX payment_methods_user ON payment_methods (client_id, user_id, created_at);
-- One card (or bank account, or address) belongs to one user of a client.
CREATE UNIQUE INDEX payment_methods_fingerprint ON payment_methods (client_id, type, fingerprint);
