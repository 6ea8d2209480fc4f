package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/usage"
	"github.com/apacops/opsbot/users"
)

// adminUsageJSON is the org-wide report of GET /api/v1/admin/usage.
type adminUsageJSON struct {
	GroupBy  string         `json:"group_by"`
	Start    string         `json:"start"`
	End      string         `json:"end"`
	TimeZone string         `json:"time_zone"`
	Rows     []adminRowJSON `json:"rows"`
	Totals   totalsJSON     `json:"totals"`
}

type adminRowJSON struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	totalsJSON
}

// adminUsage is GET /api/v1/admin/usage: org-wide usage by user, model,
// source or day, as JSON or (?format=csv) CSV.
func (s *Server) adminUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	g := usage.GroupByUser
	if q.Has("group_by") {
		var err error
		if g, err = usage.ParseGroupBy(q.Get("group_by")); err != nil {
			return errInvalid("group_by", "must be user, model, source or day")
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return errInvalid("format", "must be json or csv")
	}
	rng, err := s.rangeFrom(r, userFrom(r.Context()).Location())
	if err != nil {
		return err
	}
	rep, err := s.reports.SummarizeOrg(r.Context(), rng, g)
	if err != nil {
		return err
	}
	if format == "csv" {
		return writeUsageCSV(w, rep)
	}
	out := adminUsageJSON{
		GroupBy:  string(g),
		Start:    rng.First.String(),
		End:      rng.Last.String(),
		TimeZone: rng.Loc.String(),
		Rows:     make([]adminRowJSON, 0, len(rep.Rows)),
		Totals:   totalsOf(rep.Totals),
	}
	for _, row := range rep.Rows {
		out.Rows = append(out.Rows, adminRowJSON{Key: row.Key, Label: row.Label, totalsJSON: totalsOf(row.Totals)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// csvKeyColumns names the leading CSV columns of each breakdown.
var csvKeyColumns = map[usage.GroupBy][]string{
	usage.GroupByUser:   {"user_id", "handle"},
	usage.GroupByModel:  {"model"},
	usage.GroupBySource: {"source"},
	usage.GroupByDay:    {"date"},
}

func writeUsageCSV(w http.ResponseWriter, rep usage.OrgReport) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	keys := csvKeyColumns[rep.GroupBy]
	_ = cw.Write(append(append([]string{}, keys...),
		"prompt_tokens", "completion_tokens", "cached_tokens", "total_tokens", "cost_usd", "messages"))
	for _, row := range rep.Rows {
		rec := []string{csvCell(row.Key)}
		if len(keys) == 2 {
			rec = append(rec, csvCell(row.Label))
		}
		rec = append(rec,
			strconv.FormatInt(row.PromptTokens, 10), strconv.FormatInt(row.CompletionTokens, 10),
			strconv.FormatInt(row.CachedTokens, 10), strconv.FormatInt(row.TotalTokens(), 10),
			strings.TrimPrefix(usage.FormatUSD(row.CostMicroUSD), "$"), strconv.FormatInt(row.Messages, 10))
		_ = cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="opsbot-usage-by-%s-%s-%s.csv"`,
		rep.GroupBy, rep.Range.First, rep.Range.Last))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

// csvCell defuses text a spreadsheet would run as a formula (a handle or
// model name starting with =, +, -, @, also after leading blanks, which some
// spreadsheets skip).
func csvCell(s string) string {
	t := strings.TrimLeft(s, " \t\r\n")
	if t != "" && strings.ContainsRune("=+-@", rune(t[0])) || s != "" && strings.ContainsRune("\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// budgetJSON is one monthly limit and the month's spend.
type budgetJSON struct {
	UserID        *uuid.UUID `json:"user_id,omitempty"`
	Handle        string     `json:"handle,omitempty"`
	LimitUSD      usd        `json:"limit_usd"`
	SpentUSD      usd        `json:"spent_usd"`
	LimitMicroUSD int64      `json:"limit_micro_usd"`
	SpentMicroUSD int64      `json:"spent_micro_usd"`
}

// budgetsJSON is GET /api/v1/admin/budgets. Months are calendar months in
// the server's OPSBOT_TIME_ZONE.
type budgetsJSON struct {
	TimeZone string       `json:"time_zone"`
	Month    string       `json:"month"`
	ResetsAt time.Time    `json:"resets_at"`
	Org      *budgetJSON  `json:"org"`
	Users    []budgetJSON `json:"users"`
}

func budgetOf(b usage.Budget) budgetJSON {
	out := budgetJSON{Handle: b.Handle, LimitUSD: usd(b.LimitMicroUSD), SpentUSD: usd(b.SpentMicroUSD),
		LimitMicroUSD: b.LimitMicroUSD, SpentMicroUSD: b.SpentMicroUSD}
	if b.UserID != uuid.Nil {
		id := b.UserID
		out.UserID = &id
	}
	return out
}

func (s *Server) getBudgets(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.budgets.List(r.Context())
	if err != nil {
		return err
	}
	out := budgetsJSON{
		TimeZone: rep.Month.Loc.String(),
		Month:    rep.Month.First.String()[:7],
		ResetsAt: rep.Month.End(),
		Users:    make([]budgetJSON, 0, len(rep.Users)),
	}
	if rep.Org != nil {
		o := budgetOf(*rep.Org)
		out.Org = &o
	}
	for _, b := range rep.Users {
		out.Users = append(out.Users, budgetOf(b))
	}
	return writeJSON(w, http.StatusOK, out)
}

// putBudgetsRequest changes budgets. "org" absent leaves the org budget as
// it is; {"limit_usd": null} (or "org": null) removes a budget.
type putBudgetsRequest struct {
	Org   json.RawMessage `json:"org"`
	Users []struct {
		User     string          `json:"user"` // id or handle
		LimitUSD json.RawMessage `json:"limit_usd"`
	} `json:"users"`
}

// putBudgets is PUT /api/v1/admin/budgets; it answers with the new state.
func (s *Server) putBudgets(w http.ResponseWriter, r *http.Request) error {
	var req putBudgetsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var changes []usage.BudgetChange
	if len(req.Org) > 0 {
		c := usage.BudgetChange{}
		if string(req.Org) != "null" {
			var org struct {
				LimitUSD json.RawMessage `json:"limit_usd"`
			}
			if err := json.Unmarshal(req.Org, &org); err != nil {
				return errInvalid("org", "must be an object with limit_usd")
			}
			limit, set, err := parseLimit(org.LimitUSD, "org.limit_usd")
			if err != nil {
				return err
			}
			if set {
				c.Limit = &limit
			}
		}
		changes = append(changes, c)
	}
	for i, ub := range req.Users {
		field := fmt.Sprintf("users[%d]", i)
		u, err := s.resolveUser(r, ub.User)
		if errors.Is(err, users.ErrNotFound) {
			return errInvalid(field+".user", "no such user")
		}
		if err != nil {
			return err
		}
		limit, set, err := parseLimit(ub.LimitUSD, field+".limit_usd")
		if err != nil {
			return err
		}
		c := usage.BudgetChange{UserID: u.ID}
		if set {
			c.Limit = &limit
		}
		changes = append(changes, c)
	}
	if err := s.budgets.Set(r.Context(), changes); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "budgets changed", "admin_id", userFrom(r.Context()).ID, "changes", len(changes))
	return s.getBudgets(w, r)
}

// resolveUser finds a user by id or handle.
func (s *Server) resolveUser(r *http.Request, ref string) (users.User, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return users.User{}, users.ErrNotFound
	}
	if id, err := uuid.Parse(ref); err == nil {
		return s.users.Get(r.Context(), id)
	}
	return s.users.GetByHandle(r.Context(), ref)
}

// parseLimit reads a limit in USD exactly from its JSON text: a number or
// a decimal string, at most six decimals. null gives set == false: remove.
func parseLimit(raw json.RawMessage, field string) (micro int64, set bool, err error) {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return 0, false, errInvalid(field, "is required (null removes the budget)")
	}
	if s == "null" {
		return 0, false, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, errInvalid(field, "must be a decimal amount in USD")
		}
	}
	micro, err = usage.ParseUSD(s)
	if err != nil {
		return 0, false, errInvalid(field, "must be a non-negative USD amount with at most 6 decimals")
	}
	return micro, true, nil
}
