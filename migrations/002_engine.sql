-- The bot engine (issue 4): idempotent turns.
--
-- A turn carries an idempotency key ("slack:Ev123", "api:<uuid>", ...). The
-- user and assistant messages of a stored turn both carry it, so a retried
-- turn (a River job run twice, an HTTP retry) finds the stored reply instead
-- of calling the model, storing a second reply or recording usage twice.
ALTER TABLE messages ADD COLUMN turn_key text;
CREATE UNIQUE INDEX messages_turn_key_role ON messages (turn_key, role)
    WHERE turn_key IS NOT NULL;
