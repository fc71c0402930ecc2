-- Issue 23.2: a password guess takes its place in the count before the (slow) comparison, so a
-- burst of simultaneous guesses cannot all be weighed. `failed_attempts` now counts wrong
-- passwords in a row plus the guesses being checked right now; `attempts_in_flight` is how many of
-- those are being checked, valid until `in_flight_until` (a process killed mid-check leaves its
-- guess counted as a wrong one, and its in-flight mark lapses). A success resets the count only
-- when no other guess is in flight, and never while a lock stands.
ALTER TABLE logins ADD COLUMN attempts_in_flight integer NOT NULL DEFAULT 0;
ALTER TABLE logins ADD COLUMN in_flight_until timestamptz;
