-- Usage summaries and budgets (issue 5).
--
-- Rollups: every IANA offset is a multiple of 15 minutes, so a local
-- midnight in any zone falls on a 15-minute bucket edge and a day in any zone
-- is an exact sum of buckets. Three rollups, all maintained by one trigger in
-- the transaction that writes the ledger row:
--   usage_rollup_user_15m  per user, bucket, model, source: a user's summary
--   usage_rollup_user_day  per user and UTC day: org-wide "by user" queries
--                          (whole UTC days inside the range + 15-minute edges)
--   usage_rollup_org_15m   per bucket, model, source: org-wide by day/model/source
-- Their indexes carry the figures (INCLUDE), so summaries are index-only
-- scans that never touch the heap pages scattered over a year of rows.

CREATE TABLE usage_rollup_user_15m (
    user_id           uuid NOT NULL,
    bucket            timestamptz NOT NULL,
    model             text NOT NULL,
    source            text NOT NULL,
    events            bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost_micro_usd    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, bucket, model, source)
        INCLUDE (events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
);
CREATE INDEX usage_rollup_user_15m_bucket ON usage_rollup_user_15m (bucket)
    INCLUDE (user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd);

CREATE TABLE usage_rollup_user_day (
    user_id           uuid NOT NULL,
    day               date NOT NULL, -- UTC
    events            bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost_micro_usd    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, user_id)
        INCLUDE (events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
);

CREATE TABLE usage_rollup_org_15m (
    bucket            timestamptz NOT NULL,
    model             text NOT NULL,
    source            text NOT NULL,
    events            bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost_micro_usd    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, model, source)
        INCLUDE (events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
);

-- usage_bucket floors an instant to its 15-minute bucket (UTC-aligned, which
-- is aligned in every zone).
CREATE FUNCTION usage_bucket(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(floor(extract(epoch FROM t) / 900) * 900)
$$;

-- usage_rollup_add folds newly inserted ledger rows into the rollups. It is a
-- statement-level trigger with a transition table, so a multi-row insert
-- touches each rollup row once; rows are updated in key order so concurrent
-- writers cannot deadlock.
CREATE FUNCTION usage_rollup_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollup_user_15m AS r
        (user_id, bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
    SELECT user_id, usage_bucket(occurred_at), model, source, count(*),
           sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
    FROM new_rows
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_id, bucket, model, source) DO UPDATE SET
        events = r.events + excluded.events,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        cached_tokens = r.cached_tokens + excluded.cached_tokens,
        cost_micro_usd = r.cost_micro_usd + excluded.cost_micro_usd;

    INSERT INTO usage_rollup_user_day AS r
        (day, user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, user_id, count(*),
           sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
    FROM new_rows
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (day, user_id) DO UPDATE SET
        events = r.events + excluded.events,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        cached_tokens = r.cached_tokens + excluded.cached_tokens,
        cost_micro_usd = r.cost_micro_usd + excluded.cost_micro_usd;

    INSERT INTO usage_rollup_org_15m AS r
        (bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
    SELECT usage_bucket(occurred_at), model, source, count(*),
           sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
    FROM new_rows
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (bucket, model, source) DO UPDATE SET
        events = r.events + excluded.events,
        prompt_tokens = r.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = r.completion_tokens + excluded.completion_tokens,
        cached_tokens = r.cached_tokens + excluded.cached_tokens,
        cost_micro_usd = r.cost_micro_usd + excluded.cost_micro_usd;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_events_rollup
    AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_add();

-- Monthly budgets in micro-USD: one row per user with a budget, and one row
-- with a NULL user_id for the whole organisation.
CREATE TABLE budgets (
    user_id                 uuid UNIQUE NULLS NOT DISTINCT REFERENCES users (id) ON DELETE CASCADE,
    monthly_limit_micro_usd bigint NOT NULL CHECK (monthly_limit_micro_usd >= 0),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- A reservation holds an admitted turn's estimated cost until the turn's
-- usage row is written (Settle) or the turn fails (Cancel). One a crashed
-- process left behind stops counting at expires_at.
CREATE TABLE budget_reservations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    amount_micro_usd bigint NOT NULL CHECK (amount_micro_usd >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX budget_reservations_user ON budget_reservations (user_id);
CREATE INDEX budget_reservations_expires ON budget_reservations (expires_at);

-- The 80% warning is given once per user, scope and budget month.
CREATE TABLE budget_warnings (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope   text NOT NULL CHECK (scope IN ('user', 'org')),
    month   date NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, scope, month)
);

-- The retention purge deletes messages by age.
CREATE INDEX messages_created_at ON messages (created_at);

-- A user's distinct conversations in a range, read from the index alone.
DROP INDEX usage_events_user_time;
CREATE INDEX usage_events_user_time ON usage_events (user_id, occurred_at) INCLUDE (conversation_id);
