package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apacops/opsbot/usage"
)

// usd renders integer micro-USD as an exact JSON number ("1.5", "0.000150").
type usd int64

// MarshalJSON writes the amount as an exact decimal number, never a float.
func (u usd) MarshalJSON() ([]byte, error) {
	s := strings.TrimPrefix(usage.FormatUSD(int64(u)), "$")
	s = strings.Replace(s, "-$", "-", 1)
	return []byte(s), nil
}

// UnmarshalJSON reads an amount back exactly (clients and tests).
func (u *usd) UnmarshalJSON(b []byte) error {
	s, neg := string(b), false
	if strings.HasPrefix(s, "-") {
		s, neg = s[1:], true
	}
	v, err := usage.ParseUSD(s)
	if err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	if neg {
		v = -v
	}
	*u = usd(v)
	return nil
}

// totalsJSON is the additive figures of a summary, row or day.
type totalsJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
	CostUSD          usd   `json:"cost_usd"`
	CostMicroUSD     int64 `json:"cost_micro_usd"`
	Messages         int64 `json:"messages"`
}

func totalsOf(t usage.Totals) totalsJSON {
	return totalsJSON{
		PromptTokens:     t.PromptTokens,
		CompletionTokens: t.CompletionTokens,
		CachedTokens:     t.CachedTokens,
		TotalTokens:      t.TotalTokens(),
		CostUSD:          usd(t.CostMicroUSD),
		CostMicroUSD:     t.CostMicroUSD,
		Messages:         t.Messages,
	}
}

// tokenUsageJSON is TokenUsageSummary.
type tokenUsageJSON struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	TimeZone string `json:"time_zone"`
	Days     int    `json:"days"`
	Totals   struct {
		totalsJSON
		Conversations int64 `json:"conversations"`
	} `json:"totals"`
	ByModel []modelJSON `json:"by_model"`
	Daily   []dayJSON   `json:"daily"`
}

type modelJSON struct {
	Model string `json:"model"`
	totalsJSON
}

type dayJSON struct {
	Date string `json:"date"`
	totalsJSON
}

// tokenUsage is GET /api/v1/tokens/usage: the caller's own usage per day in
// their zone (or ?tz=).
func (s *Server) tokenUsage(w http.ResponseWriter, r *http.Request) error {
	u := userFrom(r.Context())
	rng, err := s.rangeFrom(r, u.Location())
	if err != nil {
		return err
	}
	sum, err := s.reports.Summarize(r.Context(), u.ID, rng)
	if err != nil {
		return err
	}
	out := tokenUsageJSON{
		Start:    rng.First.String(),
		End:      rng.Last.String(),
		TimeZone: rng.Loc.String(),
		Days:     rng.Len(),
		ByModel:  make([]modelJSON, 0, len(sum.ByModel)),
		Daily:    make([]dayJSON, 0, len(sum.Daily)),
	}
	out.Totals.totalsJSON = totalsOf(sum.Totals)
	out.Totals.Conversations = sum.Conversations
	for _, m := range sum.ByModel {
		out.ByModel = append(out.ByModel, modelJSON{Model: m.Model, totalsJSON: totalsOf(m.Totals)})
	}
	for _, d := range sum.Daily {
		out.Daily = append(out.Daily, dayJSON{Date: d.Date.String(), totalsJSON: totalsOf(d.Totals)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// rangeFrom reads ?days=N or ?start=&end= (dates) and ?tz= (IANA name,
// default def). Without any, it is the last 30 days.
func (s *Server) rangeFrom(r *http.Request, def *time.Location) (usage.Range, error) {
	q := r.URL.Query()
	loc := def
	if tz := q.Get("tz"); q.Has("tz") {
		l, err := loadZone(tz)
		if err != nil {
			return usage.Range{}, errInvalid("tz", "must be an IANA time zone such as Asia/Singapore")
		}
		loc = l
	}
	start, end := q.Get("start"), q.Get("end")
	if q.Has("start") || q.Has("end") {
		if q.Has("days") {
			return usage.Range{}, errInvalid("days", "cannot be combined with start and end")
		}
		if start == "" {
			return usage.Range{}, errInvalid("start", "is required with end")
		}
		if end == "" {
			return usage.Range{}, errInvalid("end", "is required with start")
		}
		first, err := usage.ParseDate(start)
		if err != nil {
			return usage.Range{}, errInvalid("start", "must be a date YYYY-MM-DD")
		}
		last, err := usage.ParseDate(end)
		if err != nil {
			return usage.Range{}, errInvalid("end", "must be a date YYYY-MM-DD")
		}
		rng, err := usage.NewRange(loc, first, last)
		switch {
		case errors.Is(err, usage.ErrRangeOrder):
			return usage.Range{}, errInvalid("end", "must not be before start")
		case errors.Is(err, usage.ErrRangeLong):
			return usage.Range{}, errInvalid("end", fmt.Sprintf("range must be at most %d days", usage.MaxDays))
		case err != nil:
			return usage.Range{}, err
		}
		return rng, nil
	}
	days := 30
	if q.Has("days") {
		n, err := strconv.Atoi(q.Get("days"))
		if err != nil || n < 1 || n > usage.MaxDays {
			return usage.Range{}, errInvalid("days", fmt.Sprintf("must be an integer from 1 to %d", usage.MaxDays))
		}
		days = n
	}
	return usage.LastDays(s.now(), loc, days)
}

// loadZone loads an IANA zone, refusing the empty and "Local" names that
// time.LoadLocation would accept.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, fmt.Errorf("bad zone %q", name)
	}
	return time.LoadLocation(name)
}
