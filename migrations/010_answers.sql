-- Kept answers (issue 14): a turn whose model answered but whose storing
-- transaction failed (a database connection cut, a shutdown) keeps the
-- answer on its claim, so the retry of the turn stores that answer instead of
-- paying for the same question again.
--
-- The answer is kept in the transaction that puts the paid call on the
-- ledger as 'unstored'; usage_event_id names that row. The retry that stores
-- the answer turns the row into the stored one (outcome 'stored', with its
-- conversation and message), so the call is on the ledger once whether or
-- not a retry ever comes. A claim holding an answer is released (expires_at
-- now), never deleted, until the turn is stored; the hourly sweep of lapsed
-- claims forgets answers no retry came for (their ledger rows stay).
--
-- turn_claims stays unlogged: a database crash that loses a kept answer
-- costs one more model call, recorded as its own row, as the provider bills
-- it. Both columns are nullable, so the code before this migration keeps
-- working during a rolling deploy.
ALTER TABLE turn_claims
    ADD COLUMN answer jsonb,
    ADD COLUMN usage_event_id bigint;
