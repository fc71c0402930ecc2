-- 1-Click on the process machinery (issue 17): a deposit's USD value, fixed when the quote stage
-- priced it (the usage buckets count it with it, and take it out with the same value), and the
-- monitoring result staff decide on when a deposit waits for manual review (350).
ALTER TABLE oneclick_transactions ADD COLUMN usd_value numeric(38,0);
ALTER TABLE oneclick_transactions ADD COLUMN monitoring jsonb;
CREATE INDEX oneclick_transactions_review ON oneclick_transactions (client_id, tx_id) WHERE status_code = 350;
