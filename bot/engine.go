package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
	"github.com/apacops/opsbot/knowledge"
	"github.com/apacops/opsbot/usage"
)

// ModelNone is the ledger's model name for turns answered without a model.
const ModelNone = "none"

// Config is what an Engine is built from. DB is required; everything else
// has a working default or may be nil.
type Config struct {
	DB DB
	// LLM answers questions; nil means no model is configured and answers
	// come from the runbooks alone.
	LLM LLM
	// Model is the configured model name, recorded when the provider does
	// not name the model that answered. While a budget applies to a user,
	// their turns are refused unless it is in the price table.
	Model     string
	Prices    *usage.Prices // default usage.BuiltinPrices()
	Retriever Retriever     // nil: no runbooks
	Budget    Budget        // nil: no budgets
	Metrics   *Metrics      // nil: no metrics
	Log       *slog.Logger
	Now       func() time.Time
	// StoreRaw stores the user's original text; by default the redacted
	// text is stored (OPSBOT_STORE_RAW).
	StoreRaw     bool
	SystemPrompt string // default DefaultSystemPrompt
	// ContextTokens is the model's context window as the engine budgets it;
	// MaxOutputTokens of it are kept free for the answer.
	ContextTokens   int // default 16000
	MaxOutputTokens int // default 1024
	HistoryMessages int // most recent messages considered, default 40
	RunbookResults  int // sections retrieved, default 3
	RunbookTokens   int // token budget for runbook excerpts, default 1500
	// CallTimeout is the deadline of one model call, retries included.
	CallTimeout time.Duration // default 90s
	// ClaimLease is how long a turn key's claim stands unless its holder
	// renews it (every third of it): a crashed holder's turn is taken over
	// by a waiting caller within about this long.
	ClaimLease time.Duration // default DefaultClaimLease
}

// Engine answers turns. It is safe for concurrent use.
type Engine struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// claims are the turn keys this process holds, so that its own waiters
	// wake when a holder ends instead of polling (see claims.go).
	claimsMu sync.Mutex
	claims   map[string]*turnClaim
	renewing bool // renewClaims runs
	// afterModel, when set (tests), runs between the model's answer and
	// the transaction that stores it.
	afterModel func(ctx context.Context)
	// waiting, when set (tests), runs when a caller starts waiting for
	// another's claim on key.
	waiting func(key string)
}

// New builds an engine.
func New(cfg Config) *Engine {
	if cfg.Prices == nil {
		cfg.Prices = usage.BuiltinPrices()
	}
	if cfg.SystemPrompt == "" {
		cfg.SystemPrompt = DefaultSystemPrompt
	}
	if cfg.ContextTokens <= 0 {
		cfg.ContextTokens = 16000
	}
	if cfg.MaxOutputTokens <= 0 {
		cfg.MaxOutputTokens = 1024
	}
	if cfg.HistoryMessages <= 0 {
		cfg.HistoryMessages = 40
	}
	if cfg.RunbookResults <= 0 {
		cfg.RunbookResults = 3
	}
	if cfg.RunbookTokens <= 0 {
		cfg.RunbookTokens = 1500
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 90 * time.Second
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = DefaultClaimLease
	}
	e := &Engine{cfg: cfg, log: cfg.Log, now: cfg.Now, claims: map[string]*turnClaim{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e
}

// HasModel reports whether a model is configured.
func (e *Engine) HasModel() bool { return e.cfg.LLM != nil }

// Respond answers a turn. It validates the text (over 16 KiB is a
// *conversations.TooLargeError before any model call), redacts secrets,
// asks the budget, loads the conversation's recent history and the best
// runbook sections, fits them into the context window, calls the model
// (streaming pieces to onDelta when it is not nil) and stores the user
// message, the assistant message, one usage ledger row and the budget
// settlement in one transaction, together with the conversation itself when
// the turn starts one.
//
// A turn whose Key is already stored returns the stored reply (Replayed) and
// records nothing; onDelta then gets the whole text once. Concurrent turns
// with one Key, in this process or another, make one model call: the others
// wait for it and replay its reply (or return its *ModelError). A keyed
// turn whose answer came but could not be stored keeps it (kept.go): the
// turn's next try stores that answer, without a second model call or
// ledger row, and onDelta gets its whole text once.
//
// Errors: a *conversations.ValidationError or TooLargeError for bad input,
// conversations.ErrNotFound for a conversation the user cannot see, a
// *usage.BudgetExceededError, a *usage.UnpricedModelError (a budget applies
// and the model has no price), or a *ModelError; in every case no message is
// stored. A model call that was paid for — cut off mid-answer, or answered
// but not stored — is still recorded on the usage ledger, with no
// conversation and an outcome that says why (an answer kept for a retry
// becomes the stored row when the retry stores it). UserMessage turns any
// of these errors into words for the user.
func (e *Engine) Respond(ctx context.Context, t Turn, onDelta func(string)) (rep Reply, err error) {
	started := e.now()
	outcome := "error"
	defer func() { e.cfg.Metrics.turn(t.Source, outcome) }()

	if err := ValidateText(t.Text); err != nil {
		outcome = "invalid"
		return Reply{}, err
	}
	if err := validateTurn(t); err != nil {
		outcome = "invalid"
		return Reply{}, err
	}
	if t.Key != "" {
		r, claim, cerr := e.claimOrReplay(ctx, t.Key)
		if cerr != nil {
			var me *ModelError
			if errors.As(cerr, &me) {
				outcome = "model_error"
			}
			return Reply{}, cerr
		}
		if claim == nil {
			outcome = "replayed"
			if onDelta != nil {
				onDelta(r.Text)
			}
			return r, nil
		}
		// err is the turn's result: a model failure is shared with the
		// callers waiting on this claim.
		defer func() { e.endClaim(ctx, claim, err) }()
		return e.respond(ctx, t, onDelta, claim, started, &outcome)
	}
	return e.respond(ctx, t, onDelta, nil, started, &outcome)
}

// respond is Respond once the turn may call the model: claim is its held
// claim, nil for a turn without a key; outcome is set for the metrics.
func (e *Engine) respond(ctx context.Context, t Turn, onDelta func(string), claim *turnClaim, started time.Time,
	outcome *string) (Reply, error) {
	conv, newConv, fresh, err := e.conversation(ctx, t)
	if err != nil {
		var ve *conversations.ValidationError
		if errors.As(err, &ve) {
			*outcome = "invalid"
		}
		return Reply{}, err
	}

	modelText := Redact(t.Text)
	storedText := modelText
	if e.cfg.StoreRaw {
		storedText = t.Text
	}
	st := &storing{t: t, conv: conv, newConv: newConv, text: storedText, question: modelText, claim: claim, outcome: outcome}

	if claim != nil && claim.answer != nil {
		// An earlier attempt paid for this answer and put it on the ledger,
		// but could not store it: store it now, without asking the budget
		// or the model again.
		st.a, st.answered = claim.answer.answer(), claim.answer.Answered
		if onDelta != nil {
			onDelta(st.a.text)
		}
		return e.storeTurn(ctx, st)
	}

	if e.cfg.Budget != nil {
		adm, err := e.cfg.Budget.Admit(ctx, t.UserID)
		if err != nil {
			var be *usage.BudgetExceededError
			if errors.As(err, &be) {
				*outcome = "budget"
				return Reply{}, err
			}
			return Reply{}, fmt.Errorf("admit turn: %w", err)
		}
		st.adm = &adm
		defer func() {
			if st.settled {
				return
			}
			if cerr := e.cfg.Budget.Cancel(context.WithoutCancel(ctx), adm); cerr != nil {
				e.log.WarnContext(ctx, "cancel budget admission", "user_id", t.UserID, "error", cerr)
			}
		}()
		if _, priced := e.cfg.Prices.Lookup(e.cfg.Model); adm.Budgeted && e.cfg.LLM != nil && !priced {
			// Its cost would be 0 on the ledger, and the budget could never
			// stop it.
			*outcome = "budget"
			return Reply{}, &usage.UnpricedModelError{Model: e.cfg.Model}
		}
	}

	var history []conversations.Message
	if newConv == nil && !fresh {
		history, err = conversations.NewStore(e.cfg.DB).Recent(ctx, conv.ID, e.cfg.HistoryMessages)
		if err != nil {
			e.cfg.Metrics.error("store")
			return Reply{}, err
		}
	}
	hits, answered := e.retrieve(ctx, knowledge.Asker{UserID: t.UserID, ConversationID: conv.ID}, withoutMarkers(modelText))

	a, err := e.answer(ctx, history, hits, answered, modelText, onDelta)
	if err != nil {
		var me *ModelError
		if errors.As(err, &me) {
			*outcome = "model_error"
			e.cfg.Metrics.error(me.Kind)
			e.log.WarnContext(ctx, "model call failed", "conversation_id", conv.ID, "kind", me.Kind, "status", me.Status, "error", me.Err)
		}
		if a.paid {
			st.settled = e.recordUnstored(ctx, t, a, usage.OutcomeInterrupted, st.adm)
		}
		return Reply{}, err
	}
	if e.afterModel != nil {
		e.afterModel(ctx)
	}
	st.a, st.answered = a, answered
	rep, err := e.storeTurn(ctx, st)
	if err == nil && !rep.Replayed {
		e.cfg.Metrics.overhead(e.now().Sub(started) - a.latency)
	}
	return rep, err
}

// ValidateText checks a message before anything is spent on it: not empty,
// at most 16 KiB (*conversations.TooLargeError), valid UTF-8, and no NUL
// characters, which PostgreSQL text refuses (better refused now than after
// the model has been paid). Adapters may call it to refuse early.
func ValidateText(text string) error {
	if err := conversations.ValidateContent(text); err != nil {
		return err
	}
	if strings.ContainsRune(text, 0) {
		return &conversations.ValidationError{Field: "content", Reason: "must not contain NUL characters"}
	}
	return nil
}

// validateTurn checks the rest of a turn: a user and a known source.
func validateTurn(t Turn) error {
	switch {
	case t.UserID == uuid.Nil:
		return &conversations.ValidationError{Field: "user", Reason: "is required"}
	}
	switch t.Source {
	case conversations.SourceAPI, conversations.SourceSlack, conversations.SourceTeams, conversations.SourceConsole:
		return nil
	}
	return &conversations.ValidationError{Field: "source", Reason: "must be one of api, slack, teams, console"}
}

// conversation finds the turn's conversation: the named one (the user's
// own) or the thread's (started on first contact, since the thread names
// it; reopened when it was archived, since someone is talking in it
// again). A turn that names neither starts a new conversation; it is
// returned as newConv, to be created in the transaction that stores the
// turn, so that such a turn that fails leaves no empty conversation behind.
// fresh is true when a thread's conversation was created just now: it has
// no history to read.
func (e *Engine) conversation(ctx context.Context, t Turn) (c conversations.Conversation,
	newConv *conversations.NewConversation, fresh bool, err error) {
	s := conversations.NewStore(e.cfg.DB)
	switch {
	case t.ConversationID != uuid.Nil:
		c, err = s.Get(ctx, t.UserID, t.ConversationID)
		return c, nil, false, err
	case t.Thread != nil:
		c, fresh, err = s.FindOrCreateByThread(ctx, conversations.NewConversation{
			OwnerID: t.UserID, Title: titleFrom(Redact(t.Text)), Source: t.Source, Thread: t.Thread})
		if err == nil && c.IsArchived() {
			c, err = s.Unarchive(ctx, c.OwnerID, c.ID)
		}
		return c, nil, fresh, err
	}
	return c, &conversations.NewConversation{OwnerID: t.UserID, Title: titleFrom(Redact(t.Text)), Source: t.Source}, false, nil
}

// retrieve returns the runbook sections for a question and whether they
// answer it. Retrieval trouble is logged and costs only the runbooks.
func (e *Engine) retrieve(ctx context.Context, who knowledge.Asker, query string) ([]knowledge.Result, bool) {
	if e.cfg.Retriever == nil {
		return nil, true // nothing to search, nothing to record as a gap
	}
	hits, err := e.cfg.Retriever.SearchFor(ctx, who, query, e.cfg.RunbookResults)
	if err != nil {
		e.cfg.Metrics.error("retrieval")
		e.log.WarnContext(ctx, "search runbooks", "error", err)
		return nil, true
	}
	if j, ok := e.cfg.Retriever.(answerJudge); ok {
		return hits, j.Answered(hits)
	}
	return hits, len(hits) > 0
}

// answer is the model's (or the runbooks') answer to one turn.
type answer struct {
	text         string
	finishReason string
	citations    []Citation
	usage        Usage
	latency      time.Duration
	// paid is true when a model was called and its usage is known, even if
	// the call then failed: the provider bills what it sent.
	paid bool
	// eventID is the ledger row of an answer kept from an earlier attempt
	// (recorded as unstored): storing the answer makes that row the stored
	// one. 0 for a fresh answer.
	eventID int64
	// unpriced is true when the model is missing from the price table.
	unpriced bool
}

// event is the answer's ledger row.
func (a answer) event(t Turn, convID, msgID uuid.UUID, outcome string, at time.Time) usage.Event {
	return usage.Event{UserID: t.UserID, ConversationID: convID, MessageID: msgID, Source: t.Source,
		Model: a.usage.Model, PromptTokens: a.usage.PromptTokens, CompletionTokens: a.usage.CompletionTokens,
		CachedTokens: a.usage.CachedTokens, CostMicroUSD: a.usage.CostMicroUSD, PriceVersion: a.usage.PriceVersion,
		Estimated: a.usage.Estimated, Outcome: outcome, Unpriced: a.unpriced, OccurredAt: at}
}

// maxAnswerBytes bounds a stored answer (the store takes up to 64 KiB).
const maxAnswerBytes = 4*conversations.MaxContentBytes - 64

func (e *Engine) answer(ctx context.Context, history []conversations.Message, hits []knowledge.Result, answered bool,
	text string, onDelta func(string)) (answer, error) {
	if e.cfg.LLM == nil {
		out, cites := extractiveAnswer(hits, !answered)
		if onDelta != nil {
			onDelta(out)
		}
		return answer{text: out, finishReason: "extractive", citations: cites,
			usage: Usage{Model: ModelNone, PriceVersion: e.cfg.Prices.Version}}, nil
	}

	system := []ChatMessage{{Role: ChatSystem, Content: e.cfg.SystemPrompt}}
	ctxText, cites := runbookContext(hits, e.cfg.RunbookTokens, !answered)
	if ctxText != "" {
		system = append(system, ChatMessage{Role: ChatSystem, Content: ctxText})
	}
	if cites == nil {
		cites = []Citation{}
	}
	msgs, dropped := fitContext(system, history, text, e.cfg.ContextTokens-e.cfg.MaxOutputTokens, e.cfg.StoreRaw)
	if dropped > 0 {
		e.log.DebugContext(ctx, "history trimmed to fit the context window", "dropped_messages", dropped)
	}

	callCtx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	t0 := e.now()
	comp, err := e.cfg.LLM.Complete(callCtx, Request{Messages: msgs, MaxTokens: e.cfg.MaxOutputTokens}, onDelta)
	latency := e.now().Sub(t0)
	model := comp.Model
	if model == "" {
		model = e.cfg.Model
	}
	e.cfg.Metrics.modelCall(model, latency)
	a := answer{citations: cites, latency: latency}
	if err == nil || comp.Text != "" {
		// A call cut off mid-answer (its partial text comes with the error)
		// is billed too: the words that came and the prompt behind them.
		a.usage, a.unpriced = e.priced(ctx, model, msgs, comp)
		a.paid = true
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			// The caller gave up (shutdown, a stopped job): not the model's
			// fault, and not something to tell the user about.
			return a, fmt.Errorf("model call abandoned: %w", ctx.Err())
		}
		return a, asModelError(callCtx, err)
	}
	a.finishReason = comp.FinishReason

	out := comp.Text
	if len(out) > maxAnswerBytes {
		cut := maxAnswerBytes
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "\n…[answer truncated]"
	}
	if strings.TrimSpace(out) == "" {
		out = "(The model returned an empty answer.)"
	}
	a.text = out
	return a, nil
}

// priced is a completion's usage and cost: the provider's token count, or a
// local estimate when it sent none (a stream without its usage chunk, a
// stream cut off); unpriced is true when the model has no price.
func (e *Engine) priced(ctx context.Context, model string, msgs []ChatMessage, comp Completion) (u Usage, unpriced bool) {
	u = Usage{Model: model, PriceVersion: e.cfg.Prices.Version}
	if comp.Usage != nil {
		u.PromptTokens, u.CompletionTokens, u.CachedTokens = comp.Usage.PromptTokens, comp.Usage.CompletionTokens, comp.Usage.CachedTokens
	} else {
		u.Estimated = true
		u.PromptTokens, u.CompletionTokens = EstimateMessages(msgs), EstimateTokens(comp.Text)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	cost, known := e.cfg.Prices.Cost(model, usage.Tokens{Prompt: u.PromptTokens, Cached: u.CachedTokens, Completion: u.CompletionTokens})
	if !known {
		e.cfg.Metrics.error("unpriced_model")
		e.log.WarnContext(ctx, "model not in the price table; usage recorded with cost 0",
			"model", model, "price_version", e.cfg.Prices.Version)
	}
	u.CostMicroUSD = cost
	return u, !known
}
