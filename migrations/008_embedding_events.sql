-- Embedding calls (issue 13, source 'embedding') are spend, not replies:
-- their tokens and cost count in every rollup, but not as events, which the
-- summaries report as replies. The trigger function is replaced, and the
-- events already counted for embedding rows are taken out.
CREATE OR REPLACE FUNCTION usage_rollup_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollup_user_15m AS r
        (user_id, bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
    SELECT user_id, usage_bucket(occurred_at), model, source, count(*) FILTER (WHERE source <> 'embedding'),
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
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, user_id, count(*) FILTER (WHERE source <> 'embedding'),
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
    SELECT usage_bucket(occurred_at), model, source, count(*) FILTER (WHERE source <> 'embedding'),
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

UPDATE usage_rollup_user_15m SET events = 0 WHERE source = 'embedding';
UPDATE usage_rollup_org_15m SET events = 0 WHERE source = 'embedding';
UPDATE usage_rollup_user_day d SET events = d.events - e.n
FROM (
    SELECT user_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM usage_events WHERE source = 'embedding'
    GROUP BY 1, 2
) e
WHERE d.user_id = e.user_id AND d.day = e.day;
