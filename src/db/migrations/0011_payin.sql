-- Pay-in API (/v3/payin, /v2/customer): crypto bought with a card. Offers are persisted quotes; a
-- paid offer is a core card deposit that converts into crypto (target currency and amount at the
-- offer's rate) and, where the user gave an address, sends it on the chain.

CREATE TABLE payin_offers (
  client_id       text NOT NULL,
  id              uuid NOT NULL,
  user_id         text NOT NULL,
  card_id         text NOT NULL,
  from_currency   text NOT NULL,
  to_currency     text NOT NULL,
  amount          numeric(38,0) NOT NULL CHECK (amount > 0),
  fee             numeric(38,0) NOT NULL CHECK (fee >= 0),
  rate            text NOT NULL,
  to_amount       numeric(38,0) NOT NULL CHECK (to_amount > 0),
  usd_value       numeric(38,0) NOT NULL,
  monitoring      jsonb NOT NULL,
  address         text,
  success_url     text,
  fail_url        text,
  status          text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'PAID', 'EXPIRED')),
  request_id      text,
  expires_at      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, id),
  FOREIGN KEY (client_id, user_id) REFERENCES users (client_id, id)
);
CREATE INDEX payin_offers_open ON payin_offers (expires_at) WHERE status = 'OPEN';
CREATE INDEX payin_offers_user ON payin_offers (client_id, user_id, created_at);

-- Where a purchase's crypto goes on the chain (the user's address), and what the chain said.
ALTER TABLE transactions ADD COLUMN destination_address text;
ALTER TABLE transactions ADD COLUMN chain_tx_hash text;

-- The sandbox chain: transfers by Ferry's idempotency key, confirmed after a delay.
CREATE TABLE sandbox_chain_transfers (
  idempotency_key  text PRIMARY KEY,
  tx_hash          text NOT NULL UNIQUE,
  currency         text NOT NULL,
  address          text NOT NULL,
  amount           numeric(38,0) NOT NULL,
  confirms_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- A Pay-in customer's preferred currency (the profile's primaryCurrency).
ALTER TABLE logins ADD COLUMN primary_currency text;

-- The sandbox KYC provider's hosted verification page (ID + liveness): one per started check.
CREATE TABLE sandbox_kyc_verifications (
  id          uuid PRIMARY KEY,
  client_id   text NOT NULL,
  user_id     text NOT NULL,
  status      text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'SUBMITTED', 'ABANDONED')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_kyc_verifications_user ON sandbox_kyc_verifications (client_id, user_id, created_at DESC);
