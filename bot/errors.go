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

// Failure kinds: what went wrong with a turn, as every surface needs to
// know it. Classify sorts errors into them.
const (
	FailInvalid      = "invalid"       // the input was refused (HTTP 422)
	FailTooLarge     = "too_large"     // the input is over a size limit (413)
	FailNotFound     = "not_found"     // no such conversation for this person (404)
	FailBudget       = "budget"        // a monthly budget is spent (402)
	FailUnpriced     = "unpriced"      // the model has no price while a budget applies (503)
	FailModelDown    = "model_down"    // the model timed out, is rate-limited or unavailable (503)
	FailModelRefused = "model_refused" // the provider refused the request or sent an unreadable answer (502)
	FailInternal     = "internal"      // anything else: a fault on our side (500)
)

// Failure is how a turn that went wrong is reported, on every surface.
type Failure struct {
	Kind string // one of the Fail* kinds
	// Message is the sentence the person is shown: chat surfaces post it,
	// the HTTP API puts it in the problem detail.
	Message string
	// Final is true when running the turn again cannot help (bad input, a
	// spent budget, a model that stayed down after the adapter's own
	// retries): the person is told at once. A turn that failed otherwise is
	// retried first.
	Final bool
	// RetryAfter is when the provider said to come back, 0 when it did not.
	RetryAfter time.Duration
}

// Classify sorts an error from Respond (or any store call a surface makes)
// into a Failure. It is the one place engine errors are turned into words
// and kinds; the HTTP API maps the kinds to statuses.
func Classify(err error) Failure {
	var me *ModelError
	var be *usage.BudgetExceededError
	var ue *usage.UnpricedModelError
	var tl *conversations.TooLargeError
	var ve *conversations.ValidationError
	switch {
	case errors.As(err, &be):
		// Already the whole sentence: which limit, when it resets, who can raise it.
		return Failure{Kind: FailBudget, Final: true, Message: be.Error()}
	case errors.As(err, &ue):
		// Already the whole sentence: which model, what an admin does.
		return Failure{Kind: FailUnpriced, Final: true, Message: ue.Error()}
	case errors.As(err, &tl):
		return Failure{Kind: FailTooLarge, Final: true,
			Message: fmt.Sprintf("That message is too long for me: the limit is %d KiB. Please shorten it or split it up.", tl.Limit/1024)}
	case errors.As(err, &ve):
		return Failure{Kind: FailInvalid, Final: true, Message: fmt.Sprintf("I could not take that message (%s).", ve.Error())}
	case errors.Is(err, conversations.ErrNotFound):
		return Failure{Kind: FailNotFound, Final: true, Message: "I cannot find that conversation."}
	case errors.As(err, &me):
		return modelFailure(me)
	}
	return Failure{Kind: FailInternal, Message: "Something went wrong on my side and your message was not answered. Please try again."}
}

// modelFailure is the Failure of a model call that failed for good.
func modelFailure(me *ModelError) Failure {
	f := Failure{Kind: FailModelDown, Final: true, RetryAfter: me.RetryAfter}
	switch me.Kind {
	case ModelTimeout:
		f.Message = "The language model did not answer in time, so I have no reply. Please try again in a minute."
	case ModelRateLimited:
		f.Message = "The language model provider is rate-limiting us right now, so I have no reply. Please try again in a minute."
	case ModelRejected:
		f.Kind = FailModelRefused
		f.Message = fmt.Sprintf("The language model provider refused the request (HTTP %d); an admin should check the model configuration.", me.Status)
	case ModelBadAnswer:
		f.Kind = FailModelRefused
		f.Message = "The language model sent an answer I could not read. Please try again."
	default:
		f.Message = "The language model is unavailable right now, so I have no reply. Please try again in a few minutes."
	}
	return f
}

// UserMessage is what to tell a person whose turn failed with err: a plain
// sentence for the failures they can act on, a generic apology otherwise.
func UserMessage(err error) string { return Classify(err).Message }
