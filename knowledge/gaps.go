package knowledge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/apacops/opsbot/redact"
)

// maxGapQuestion bounds a stored gap question; the rest is cut.
const maxGapQuestion = 1000

// RecordGap stores a question the runbooks could not answer (the engine calls
// it when no section reached MinScore). Secrets in it are redacted here,
// whatever the caller did: the weekly report posts these questions to a
// channel. uuid.Nil for the user or conversation stores no reference, and
// so does a user or conversation that no longer exists.
func (ix *Index) RecordGap(ctx context.Context, question string, userID, conversationID uuid.UUID) error {
	q := strings.Join(strings.Fields(strings.ToValidUTF8(strings.ReplaceAll(question, "\x00", " "), " ")), " ")
	q = redact.String(q)
	if len(q) > maxGapQuestion {
		q = strings.ToValidUTF8(q[:maxGapQuestion], "")
	}
	norm := normalizeQuestion(q)
	if norm == "" {
		return nil // nothing anyone could write a runbook for
	}
	// The grouping key is the question's stemmed words without stop words,
	// in sorted order ("rotating the vault token" and "vault token
	// rotation" meet), or the plain normalised text when nothing is left.
	const insert = `
		INSERT INTO knowledge_gaps (question, normalized, user_id, conversation_id, asked_at)
		VALUES ($1, coalesce(nullif(array_to_string(tsvector_to_array(to_tsvector('english', $2)), ' '), ''), $2),
		        $3, $4, $5)`
	now := ix.now()
	_, err := ix.db.Exec(ctx, insert, q, norm, nullUUID(userID), nullUUID(conversationID), now)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		// The user or conversation is already gone (deleted meanwhile): the
		// question is still a gap in the runbooks.
		_, err = ix.db.Exec(ctx, insert, q, norm, nil, nil, now)
	}
	if err != nil {
		return fmt.Errorf("record runbook gap: %w", err)
	}
	return nil
}

func nullUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// fillerWords carry no meaning for grouping questions.
var fillerWords = map[string]bool{
	"a": true, "an": true, "the": true, "please": true, "pls": true, "plz": true,
	"hi": true, "hello": true, "hey": true, "thanks": true, "thank": true, "you": true,
	"opsbot": true, "can": true, "could": true, "would": true, "i": true, "me": true,
	"we": true, "our": true, "my": true, "is": true, "are": true, "do": true, "does": true,
	"to": true, "for": true, "of": true, "on": true, "in": true, "there": true, "any": true,
}

// normalizeQuestion is the grouping key of a gap question: lower case, words
// only (host names, codes and versions keep their inner - _ . /), filler
// words dropped. "How do I rotate the Vault token?" and "how to rotate vault
// token" share one key.
func normalizeQuestion(q string) string {
	var words []string
	for _, f := range strings.Fields(strings.ToLower(q)) {
		f = strings.TrimFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		f = strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_./", r) {
				return r
			}
			return -1
		}, f)
		if f == "" || fillerWords[f] {
			continue
		}
		words = append(words, f)
	}
	return strings.Join(words, " ")
}

// GapReport is "questions our runbooks could not answer" over a period.
type GapReport struct {
	Since  time.Time
	Until  time.Time
	Total  int        // questions recorded in the period
	Groups []GapGroup // similar questions together, most asked first
}

// GapGroup is one question, however many times and ways it was asked.
type GapGroup struct {
	Question   string    // the most recent wording
	Count      int       // times asked
	Users      int       // distinct people who asked
	FirstAsked time.Time // first time asked in the period
	LastAsked  time.Time // last time asked
}

// Gaps reports the unanswered questions asked since the given time, grouped
// by normalised wording, most asked (then most recent) first.
func (ix *Index) Gaps(ctx context.Context, since time.Time) (GapReport, error) {
	rep := GapReport{Since: since, Until: ix.now()}
	rows, err := ix.db.Query(ctx, `
		SELECT (array_agg(question ORDER BY asked_at DESC, id DESC))[1],
		       count(*), count(DISTINCT user_id), min(asked_at), max(asked_at)
		FROM knowledge_gaps
		WHERE asked_at >= $1 AND asked_at <= $2
		GROUP BY normalized
		ORDER BY count(*) DESC, max(asked_at) DESC, normalized`, since, rep.Until)
	if err != nil {
		return rep, fmt.Errorf("report runbook gaps: %w", err)
	}
	var g GapGroup
	_, err = pgx.ForEachRow(rows, []any{&g.Question, &g.Count, &g.Users, &g.FirstAsked, &g.LastAsked}, func() error {
		rep.Groups = append(rep.Groups, g)
		rep.Total += g.Count
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("report runbook gaps: %w", err)
	}
	return rep, nil
}

// maxReportGroups bounds the rendered report; the rest is summarised.
// maxReportQuestion bounds each question as rendered, so a full report stays
// well under the chat platforms' message limits (Teams: about 28 KB).
const (
	maxReportGroups   = 30
	maxReportQuestion = 200 // runes
)

// Text renders the report for a chat channel or a terminal, with times in loc.
func (r GapReport) Text(loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Questions our runbooks could not answer, %s to %s\n",
		r.Since.In(loc).Format("2006-01-02 15:04"), r.Until.In(loc).Format("2006-01-02 15:04 MST"))
	if len(r.Groups) == 0 {
		b.WriteString("None: every question found a runbook section.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "%d questions, %d distinct:\n", r.Total, len(r.Groups))
	for i, g := range r.Groups {
		if i == maxReportGroups {
			fmt.Fprintf(&b, "… and %d more\n", len(r.Groups)-maxReportGroups)
			break
		}
		people := ""
		switch {
		case g.Users == 1:
			people = " by 1 person"
		case g.Users > 1:
			people = fmt.Sprintf(" by %d people", g.Users)
		}
		q := g.Question
		if r := []rune(q); len(r) > maxReportQuestion {
			q = string(r[:maxReportQuestion-1]) + "…"
		}
		fmt.Fprintf(&b, "%2d. %q — asked %d×%s, last %s\n",
			i+1, q, g.Count, people, g.LastAsked.In(loc).Format("Mon 2006-01-02 15:04"))
	}
	return b.String()
}

// PurgeQuestionsBefore deletes recorded gap questions asked before cutoff:
// they are copies of people's messages and follow the messages' retention.
func (ix *Index) PurgeQuestionsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := ix.db.Exec(ctx, `DELETE FROM knowledge_gaps WHERE asked_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("purge runbook gap questions before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return tag.RowsAffected(), nil
}
