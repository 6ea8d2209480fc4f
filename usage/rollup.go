package usage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RebuildRollups recomputes every usage rollup from the ledger in one
// transaction. The trigger keeps them current in normal running; this is
// for bulk loads done with the trigger disabled and for repairs. Like the
// trigger (migration 008), it counts embedding calls as spend, not events.
func RebuildRollups(ctx context.Context, db *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, q := range []string{
			`LOCK TABLE usage_events IN SHARE MODE`,
			`TRUNCATE usage_rollup_user_15m, usage_rollup_user_day, usage_rollup_org_15m`,
			`INSERT INTO usage_rollup_user_15m (user_id, bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
			 SELECT user_id, usage_bucket(occurred_at), model, source, count(*) FILTER (WHERE source <> 'embedding'), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
			 FROM usage_events GROUP BY 1, 2, 3, 4`,
			`INSERT INTO usage_rollup_user_day (day, user_id, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
			 SELECT day, user_id, sum(events), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
			 FROM (SELECT (bucket AT TIME ZONE 'UTC')::date AS day, * FROM usage_rollup_user_15m) r GROUP BY 1, 2`,
			`INSERT INTO usage_rollup_org_15m (bucket, model, source, events, prompt_tokens, completion_tokens, cached_tokens, cost_micro_usd)
			 SELECT bucket, model, source, sum(events), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens), sum(cost_micro_usd)
			 FROM usage_rollup_user_15m GROUP BY 1, 2, 3`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("rebuild usage rollups: %w", err)
			}
		}
		return nil
	})
}
