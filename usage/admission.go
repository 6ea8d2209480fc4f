package usage

import (
	"fmt"
	"time"
)

// Admission is a budget's permission for one turn, taken before the model is
// called and settled (or cancelled) when the turn ends.
type Admission struct {
	// ID identifies the reservation, if the budget keeps one; 0 when not.
	ID int64
	// Warning is a notice for the user (e.g. "80% of your monthly budget is
	// used"); empty when there is nothing to say.
	Warning string
}

// BudgetExceededError refuses a turn because a budget is spent. The engine
// answers the user with it and calls no model.
type BudgetExceededError struct {
	Scope         string // "user" or "org"
	LimitMicroUSD int64
	SpentMicroUSD int64
	ResetsAt      time.Time
}

// Error is the message the user sees: which limit, and when it resets.
func (e *BudgetExceededError) Error() string {
	whose := "your"
	if e.Scope == ScopeOrg {
		whose = "the team's"
	}
	return fmt.Sprintf("Sorry, %s monthly budget of %s is used up (%s spent this month). "+
		"It resets %s; an admin can raise it sooner.",
		whose, FormatUSD(e.LimitMicroUSD), FormatUSD(e.SpentMicroUSD), formatReset(e.ResetsAt))
}

// FormatUSD renders integer micro-USD as dollars, "$1.234567" trimmed to at
// least cents: "$0.50", "$0.00015".
func FormatUSD(micro int64) string {
	sign := ""
	if micro < 0 {
		sign, micro = "-", -micro
	}
	s := fmt.Sprintf("%s$%d.%06d", sign, micro/1e6, micro%1e6)
	for len(s) > 0 && s[len(s)-1] == '0' && s[len(s)-3] != '.' {
		s = s[:len(s)-1]
	}
	return s
}
