-- A currency's value in US dollars, for monitoring, the KYC gate, usage totals and trades, when the
-- rates provider does not price it (a client's own points or e-money). Each change is a new version,
-- never an update: who set it (the client's staff or the platform admin), when, and from when it
-- applies. The current rate is the newest version whose effective_from has come.
-- The rate is exact: NUMERIC with 12 decimal places, up to 15 digits before the point; never a float.
CREATE TABLE currency_usd_rates (
  client_id       text NOT NULL,
  currency        text NOT NULL,
  version         integer NOT NULL CHECK (version > 0),
  id              uuid NOT NULL UNIQUE,
  usd_rate        numeric(27,12) NOT NULL CHECK (usd_rate > 0),
  effective_from  timestamptz NOT NULL,
  set_by_kind     text NOT NULL,
  set_by_id       text,
  set_by_role     text,
  request_id      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, currency, version),
  FOREIGN KEY (client_id, currency) REFERENCES ledger_currencies (client_id, code)
);
CREATE INDEX currency_usd_rates_effective ON currency_usd_rates (client_id, currency, effective_from DESC, version DESC);
