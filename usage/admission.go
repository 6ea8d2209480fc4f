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
	// Budgeted is true when a budget applies to the user or the org: the
	// turn's cost must then be knowable (see UnpricedModelError).
	Budgeted bool
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

// UnpricedModelError refuses a turn on a model missing from the price table
// while a budget applies: its cost would be recorded as 0 and the budget
// could never stop it. The engine answers the user with it and calls no
// model.
type UnpricedModelError struct {
	Model string
}

// Error is the message the user sees: which model, and what an admin does.
func (e *UnpricedModelError) Error() string {
	return fmt.Sprintf("Sorry, I cannot answer on the model %q: it has no price in the price table, "+
		"and a monthly budget applies, so its cost could not be counted against it. "+
		"An admin can add the model to the price table (OPSBOT_PRICES_FILE) or remove the budget.", e.Model)
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
