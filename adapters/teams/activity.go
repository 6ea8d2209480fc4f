package teams

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/apacops/opsbot/conversations"
)

// Conversation types of Teams activities.
const (
	convPersonal  = "personal"
	convGroupChat = "groupChat"
	convChannel   = "channel"
)

// chatThread is the thread id of a personal or group chat: a chat is one
// long thread, and the new command detaches its conversation to start
// another.
const chatThread = "chat"

// inbound is an activity as the endpoint needs it: the Bot Framework
// schema, plus its entities read whole (schema.Entity keeps only their
// type) and where it belongs.
type inbound struct {
	schema.Activity
	mentions []schema.Mention
}

// parseActivity reads an activity from a request body. It checks only
// what every activity must carry; the handler checks the rest per type.
func parseActivity(body []byte) (*inbound, error) {
	var in inbound
	if err := json.Unmarshal(body, &in.Activity); err != nil {
		return nil, fmt.Errorf("malformed activity: %w", err)
	}
	var ents struct {
		Entities []json.RawMessage `json:"entities"`
	}
	if err := json.Unmarshal(body, &ents); err != nil {
		return nil, fmt.Errorf("malformed activity entities: %w", err)
	}
	for _, e := range ents.Entities {
		var m schema.Mention
		if json.Unmarshal(e, &m) == nil && m.Type == "mention" {
			in.mentions = append(in.mentions, m)
		}
	}
	switch {
	case in.Type == "":
		return nil, errors.New("activity has no type")
	case in.ServiceURL == "" || in.ChannelID == "":
		return nil, errors.New("activity has no serviceUrl or channelId")
	case strings.TrimSpace(conversationBase(in.Conversation.ID)) == "":
		// Also ";messageid=…" alone: a reply chain of no conversation.
		return nil, errors.New("activity has no conversation")
	}
	return &in, nil
}

// tenant is the tenant the activity comes from.
func (in *inbound) tenant() string {
	if in.Conversation.TenantID != "" {
		return in.Conversation.TenantID
	}
	if t, ok := in.ChannelData["tenant"].(map[string]any); ok {
		if id, ok := t["id"].(string); ok {
			return id
		}
	}
	return ""
}

// conversationType is personal, groupChat or channel.
func (in *inbound) conversationType() string {
	if in.Conversation.ConversationType != "" {
		return in.Conversation.ConversationType
	}
	if in.Conversation.IsGroup {
		return convGroupChat
	}
	return convPersonal
}

// threadKey maps the activity to its conversation's thread: a channel's
// reply chain ("19:…@thread.tacv2;messageid=<root>") by its root message,
// a personal or group chat by its conversation id.
func (in *inbound) threadKey() conversations.ThreadKey {
	k := conversations.ThreadKey{Platform: conversations.SourceTeams, Tenant: in.tenant(),
		Channel: conversationBase(in.Conversation.ID), Thread: chatThread}
	if in.conversationType() == convChannel {
		_, root, ok := strings.Cut(in.Conversation.ID, ";messageid=")
		switch {
		case ok && root != "":
			k.Thread = root
		default:
			// A new post in the channel: it is the root of its chain.
			k.Thread = in.ID
		}
	}
	return k
}

// conversationBase is a conversation id without its reply chain: the
// channel of "19:…@thread.tacv2;messageid=<root>". A chat's id has none,
// and one that claims one (a malformed activity) keys by its base all the
// same.
func conversationBase(id string) string {
	base, _, _ := strings.Cut(id, ";messageid=")
	return base
}

// replyConversation is the conversation id replies are posted to: a
// channel's reply chain, or the chat.
func (in *inbound) replyConversation() string {
	if in.conversationType() == convChannel && !strings.Contains(in.Conversation.ID, ";messageid=") && in.ID != "" {
		return in.Conversation.ID + ";messageid=" + in.ID
	}
	return in.Conversation.ID
}

// mentioned reports whether the bot (the activity's recipient) is
// mentioned.
func (in *inbound) mentioned() bool {
	for _, m := range in.mentions {
		if m.Mentioned.ID != "" && m.Mentioned.ID == in.Recipient.ID {
			return true
		}
	}
	return false
}

var atTag = regexp.MustCompile(`(?is)<at[^>]*>(.*?)</at>`)

// question is the text for the bot: the bot's mention removed, other
// people's mentions left as their names, spaces tidied.
func (in *inbound) question() string {
	text := in.Text
	for _, m := range in.mentions {
		if m.Mentioned.ID == in.Recipient.ID && m.Text != "" {
			text = strings.ReplaceAll(text, m.Text, " ")
		}
	}
	text = atTag.ReplaceAllString(text, "$1")
	text = strings.ReplaceAll(text, "\u00a0", " ")
	text = strings.ReplaceAll(text, "&nbsp;", " ")
	return strings.Join(strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
}
