package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/usage"
)

// Kinds of model failure, for messages, metrics and HTTP statuses.
const (
	ModelTimeout     = "timeout"      // no answer within the deadline
	ModelRateLimited = "rate_limited" // 429 after the retries
	ModelUnavailable = "unavailable"  // 5xx or network trouble after the retries
	ModelRejected    = "rejected"     // 4xx: the request or credentials were refused
	ModelBadAnswer   = "bad_answer"   // the answer could not be read
)

// ModelError is a model call that failed for good. Nothing of the turn is
// stored; the user is told (see UserMessage).
type ModelError struct {
	Kind       string
	Status     int           // the provider's HTTP status, 0 when none
	RetryAfter time.Duration // the provider's last Retry-After, 0 when none
	Err        error
}

// Error names the kind of failure, the provider status and the cause.
func (e *ModelError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("model %s (HTTP %d): %v", e.Kind, e.Status, e.Err)
	}
	return fmt.Sprintf("model %s: %v", e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *ModelError) Unwrap() error { return e.Err }

// asModelError classifies any error from an LLM.
func asModelError(ctx context.Context, err error) *ModelError {
	var me *ModelError
	if errors.As(err, &me) {
		return me
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &ModelError{Kind: ModelTimeout, Err: err}
	}
	return &ModelError{Kind: ModelUnavailable, Err: err}
}

// UserMessage is what to tell a person whose turn failed with err: a plain
// sentence for the failures they can act on, a generic apology otherwise.
// Chat adapters post it; the HTTP API puts it in the problem detail.
func UserMessage(err error) string {
	var me *ModelError
	var be *usage.BudgetExceededError
	var ue *usage.UnpricedModelError
	var tl *conversations.TooLargeError
	var ve *conversations.ValidationError
	switch {
	case errors.As(err, &be):
		return be.Error() // already the whole sentence: which limit, when it resets, who can raise it
	case errors.As(err, &ue):
		return ue.Error() // already the whole sentence: which model, what an admin does
	case errors.As(err, &tl):
		return fmt.Sprintf("That message is too long for me: the limit is %d KiB. Please shorten it or split it up.", tl.Limit/1024)
	case errors.As(err, &ve):
		return fmt.Sprintf("I could not take that message (%s).", ve.Error())
	case errors.As(err, &me):
		switch me.Kind {
		case ModelTimeout:
			return "The language model did not answer in time, so I have no reply. Please try again in a minute."
		case ModelRateLimited:
			return "The language model provider is rate-limiting us right now, so I have no reply. Please try again in a minute."
		case ModelRejected:
			return fmt.Sprintf("The language model provider refused the request (HTTP %d); an admin should check the model configuration.", me.Status)
		case ModelBadAnswer:
			return "The language model sent an answer I could not read. Please try again."
		}
		return "The language model is unavailable right now, so I have no reply. Please try again in a few minutes."
	case errors.Is(err, conversations.ErrNotFound):
		return "I cannot find that conversation."
	}
	return "Something went wrong on my side and your message was not answered. Please try again."
}
