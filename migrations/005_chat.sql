-- The chat seam (issue 9): what every chat surface shares.
--
-- Votes on answers, from the 👍/👎 buttons in Slack and Teams' feedback
-- buttons: one per person and answer, changeable. A down vote also puts the
-- question on the weekly runbook-gap report.
CREATE TABLE message_feedback (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    vote       smallint NOT NULL CHECK (vote IN (-1, 1)),
    voted_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);

-- "handover": a channel's conversations of the last shift, newest first.
CREATE INDEX conversations_channel_activity
    ON conversations (thread_platform, thread_tenant, thread_channel, activity_at DESC)
    WHERE thread_platform IS NOT NULL;
