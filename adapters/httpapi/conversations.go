package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/conversations"
)

// conversationJSON is the Conversation of the REST contract.
type conversationJSON struct {
	ID            uuid.UUID  `json:"id"`
	Title         string     `json:"title"`
	Source        string     `json:"source"`
	OwnerID       uuid.UUID  `json:"owner_id"`
	IsArchived    bool       `json:"is_archived"`
	ArchivedAt    *time.Time `json:"archived_at"`
	MessageCount  int        `json:"message_count"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastMessageAt *time.Time `json:"last_message_at"`
}

func toConversationJSON(c conversations.Conversation) conversationJSON {
	return conversationJSON{
		ID: c.ID, Title: c.Title, Source: c.Source, OwnerID: c.OwnerID,
		IsArchived: c.IsArchived(), ArchivedAt: c.ArchivedAt, MessageCount: c.MessageCount,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, LastMessageAt: c.LastMessageAt,
	}
}

// usageJSON is the per-message usage of the REST contract.
type usageJSON struct {
	Model            string `json:"model,omitempty"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	TotalTokens      int    `json:"total_tokens"`
	CostUSD          usd    `json:"cost_usd"`
	Estimated        bool   `json:"estimated"`
}

// messageJSON is the Message of the REST contract.
type messageJSON struct {
	ID             uuid.UUID       `json:"id"`
	ConversationID uuid.UUID       `json:"conversation_id"`
	Role           string          `json:"role"`
	Content        string          `json:"content"`
	AuthorID       *uuid.UUID      `json:"author_id"`
	CreatedAt      time.Time       `json:"created_at"`
	Metadata       json.RawMessage `json:"metadata"`
	Usage          *usageJSON      `json:"usage"`
}

func toMessageJSON(m conversations.Message) messageJSON {
	out := messageJSON{
		ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Content: m.Content,
		AuthorID: m.AuthorID, CreatedAt: m.CreatedAt, Metadata: m.Metadata,
	}
	if len(out.Metadata) == 0 {
		out.Metadata = json.RawMessage(`{}`)
	}
	if m.Role == conversations.RoleAssistant {
		var meta struct {
			Model     string `json:"model"`
			Estimated bool   `json:"estimated"`
		}
		_ = json.Unmarshal(m.Metadata, &meta)
		out.Usage = &usageJSON{
			Model: meta.Model, PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
			TotalTokens: m.TotalTokens, CostUSD: usd(m.CostMicroUSD), Estimated: meta.Estimated,
		}
	}
	return out
}

// pathID parses the {id} path segment; a malformed id is 422 naming "id".
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.UUID{}, errInvalid("id", "must be a UUID")
	}
	return id, nil
}

// pageOptions reads skip, limit and cursor.
func pageOptions(r *http.Request) (conversations.PageOptions, error) {
	skip, err := queryInt(r, "skip", 0)
	if err != nil {
		return conversations.PageOptions{}, err
	}
	limit, err := queryInt(r, "limit", conversations.DefaultLimit)
	if err != nil {
		return conversations.PageOptions{}, err
	}
	if limit < 1 || limit > conversations.MaxLimit {
		return conversations.PageOptions{}, errInvalid("limit", "must be between 1 and "+strconv.Itoa(conversations.MaxLimit))
	}
	return conversations.PageOptions{Skip: skip, Limit: limit, Cursor: r.URL.Query().Get("cursor")}, nil
}

// setNextLink advertises the next keyset page (RFC 8288), keeping the other
// query parameters and dropping skip, which a cursor replaces.
func setNextLink(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Del("skip")
	q.Set("cursor", next)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

type titleBody struct {
	Title *string `json:"title"`
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request) error {
	var body titleBody
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &body); err != nil {
			return err
		}
	}
	n := conversations.NewConversation{OwnerID: userFrom(r.Context()).ID, Source: conversations.SourceAPI}
	if body.Title != nil {
		t, err := conversations.NormalizeTitle(*body.Title)
		if err != nil {
			return err
		}
		n.Title = t
	}
	c, err := s.convs.Create(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/conversations/"+c.ID.String())
	return writeJSON(w, http.StatusCreated, toConversationJSON(c))
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) error {
	po, err := pageOptions(r)
	if err != nil {
		return err
	}
	archived, err := queryBool(r, "include_archived", false)
	if err != nil {
		return err
	}
	page, err := s.convs.List(r.Context(), userFrom(r.Context()).ID,
		conversations.ListOptions{PageOptions: po, IncludeArchived: archived})
	if err != nil {
		return err
	}
	out := make([]conversationJSON, 0, len(page.Items))
	for _, c := range page.Items {
		out = append(out, toConversationJSON(c))
	}
	setNextLink(w, r, page.Next)
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := s.convs.Get(r.Context(), userFrom(r.Context()).ID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toConversationJSON(c))
}

func (s *Server) renameConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var body titleBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Title == nil {
		return errInvalid("title", "is required")
	}
	c, err := s.convs.Rename(r.Context(), userFrom(r.Context()).ID, id, *body.Title)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toConversationJSON(c))
}

func (s *Server) deleteConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.convs.Delete(r.Context(), userFrom(r.Context()).ID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type archiveResponse struct {
	Message      string           `json:"message"`
	Conversation conversationJSON `json:"conversation"`
}

func (s *Server) archiveConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := s.convs.Archive(r.Context(), userFrom(r.Context()).ID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, archiveResponse{"Conversation archived successfully", toConversationJSON(c)})
}

func (s *Server) unarchiveConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := s.convs.Unarchive(r.Context(), userFrom(r.Context()).ID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, archiveResponse{"Conversation unarchived successfully", toConversationJSON(c)})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	po, err := pageOptions(r)
	if err != nil {
		return err
	}
	page, err := s.convs.ListMessages(r.Context(), userFrom(r.Context()).ID, id, po)
	if err != nil {
		return err
	}
	out := make([]messageJSON, 0, len(page.Items))
	for _, m := range page.Items {
		out = append(out, toMessageJSON(m))
	}
	setNextLink(w, r, page.Next)
	return writeJSON(w, http.StatusOK, out)
}
