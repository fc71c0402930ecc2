-- Issue 18: the 1-Click face speaks PaymentIQ's status codes. Two of Ferry's codes meant something
-- else there: 301 (Ferry: waiting at the identity provider; PaymentIQ: WAITING_3D_SECURE) becomes
-- 300 WAITING_INPUT, and 511 (Ferry: the KYC scenario needs more; PaymentIQ:
-- ERR_DECLINED_REQ_BLOCKED) becomes 564 ERR_DECLINED_KYC_BLOCK. Stored rows keep their meaning;
-- status_name (the flow's own state name) is unchanged. Audit rows keep the code they recorded.
-- The end user's address at authorize (sealed, like the proven identity): the token's and
-- check_token's `ip`.
UPDATE oneclick_transactions SET status_code = 300 WHERE status_code = 301;
UPDATE oneclick_transactions SET status_code = 564 WHERE status_code = 511;
ALTER TABLE oneclick_transactions ADD COLUMN end_user_ip text;
-- The authorize request's `attributes[key]=value` (PaymentIQ's), echoed in the signin callback.
ALTER TABLE oneclick_transactions ADD COLUMN attributes jsonb;
