-- Issue 17.8: the acquirer's test card numbers are anyone's (as in every acquirer's test mode).
-- A real card (or bank account, or address) still belongs to one user of a client; a test card is
-- saved once per user who adds it — a row of their own, sealed as any other.

ALTER TABLE payment_methods ADD COLUMN test_card boolean NOT NULL DEFAULT false;

DROP INDEX payment_methods_fingerprint;
CREATE UNIQUE INDEX payment_methods_fingerprint ON payment_methods (client_id, type, fingerprint)
  WHERE NOT test_card;
CREATE UNIQUE INDEX payment_methods_test_card ON payment_methods (client_id, user_id, type, fingerprint)
  WHERE test_card;
