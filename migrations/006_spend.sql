-- Spend truth (issue 12): every paid model call on the ledger, one model
-- call per turn key.
--
-- A ledger row says whether its turn was stored with it ('stored') or why a
-- paid call could not be: 'interrupted' (cut off before the answer was
-- complete; tokens estimated), 'unstored' (the answer came, storing it
-- failed), 'duplicate' (another delivery of the same turn was stored first).
-- Such rows have no conversation and no message, and count in every summary
-- and budget like any other row. priced is false when the model was missing
-- from the price table, so its cost of 0 is not mistaken for a free call.
-- Both columns have defaults, so the code before this migration keeps
-- writing valid rows during a rolling deploy.
ALTER TABLE usage_events
    ADD COLUMN outcome text NOT NULL DEFAULT 'stored'
        CHECK (outcome IN ('stored', 'interrupted', 'unstored', 'duplicate')),
    ADD COLUMN priced boolean NOT NULL DEFAULT true;

-- A claim is held by the one caller that may call the model for a turn key;
-- every other caller with that key waits for the stored reply. The holder
-- renews expires_at while it works, so a crashed holder's claim is taken
-- over once it lapses. The turn's storing transaction deletes the claim; a
-- holder whose model call failed leaves failure set (and the claim lapsed),
-- so the callers that waited on it get the same error instead of paying
-- for a second failing call, while a later retry may claim the key afresh.
-- Unlogged: taking a claim is one more write per turn, and this way it
-- costs no WAL flush. Claims are fleeting; losing them in a database crash
-- or failover costs at worst one duplicate model call for a turn in flight.
CREATE UNLOGGED TABLE turn_claims (
    turn_key       text PRIMARY KEY,
    holder         uuid NOT NULL,
    expires_at     timestamptz NOT NULL,
    failure        text,
    failure_status integer NOT NULL DEFAULT 0
);
CREATE INDEX turn_claims_expires ON turn_claims (expires_at);
