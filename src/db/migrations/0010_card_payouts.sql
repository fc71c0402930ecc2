-- Payouts to cards (Wallet API card withdrawals): the sandbox acquirer's own record of them, by
-- Ferry's idempotency key (one payout per key), as it keeps charges.
CREATE TABLE sandbox_acquirer_payouts (
  idempotency_key  text PRIMARY KEY,
  reference        text NOT NULL UNIQUE,
  card_last4       text NOT NULL,
  amount           numeric(38,0) NOT NULL,
  currency         text NOT NULL,
  outcome          text NOT NULL CHECK (outcome IN ('ACCEPTED', 'DECLINED')),
  decline_code     text,
  settles_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);

-- The audit trail names the actor's role (Wallet API staff: administrator, accountant, …).
ALTER TABLE audit_log ADD COLUMN actor_role text;
