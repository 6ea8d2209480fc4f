package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apacops/opsbot/bot"
	"github.com/apacops/opsbot/internal/fakes/modelfake"
	"github.com/apacops/opsbot/internal/fakes/slackfake"
	"github.com/apacops/opsbot/internal/testriver"
)

func metadataOf(t *testing.T, m slackfake.Message) map[string]any {
	t.Helper()
	var md struct {
		EventType    string         `json:"event_type"`
		EventPayload map[string]any `json:"event_payload"`
	}
	if err := json.Unmarshal([]byte(m.Metadata), &md); err != nil || md.EventType != replyEvent {
		t.Fatalf("message %s metadata %q: want event_type %s", m.TS, m.Metadata, replyEvent)
	}
	return md.EventPayload
}

// threadAnswer is the stored answer of a thread's conversation: its id and
// recorded platform message id.
func threadAnswer(t *testing.T, e *env, channel, thread string) (id, pmid string) {
	t.Helper()
	if err := e.db.QueryRow(context.Background(), `SELECT m.id::text, coalesce(m.platform_message_id, '') FROM messages m
		JOIN conversations c ON c.id = m.conversation_id
		WHERE m.role = 'assistant' AND c.thread_platform = 'slack' AND c.thread_channel = $1 AND c.thread_id = $2
		ORDER BY m.seq DESC LIMIT 1`, channel, thread).Scan(&id, &pmid); err != nil {
		t.Fatalf("stored answer of thread %s: %v", thread, err)
	}
	return id, pmid
}

func TestMentionAnsweredInItsThread(t *testing.T) {
	e := testEnv(t)
	e.model.Script("how do I free /var?", answer("Run **df -h**, then check /var/log."))
	const ts = "1764000001.000100"
	if resp := e.deliver(t, "Ev1MENTION", slackfake.AppMention("U1ANA", "C1MENTION", ts, "", "how do I free /var?"), 0); resp.StatusCode != http.StatusOK {
		t.Fatalf("delivery: got %d, want 200", resp.StatusCode)
	}
	msgs := e.answers(t, "C1MENTION", ts, 1)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages in the thread, want 1", len(msgs))
	}
	m := msgs[0]
	// The workspace streams: the answer was written into a chat.startStream
	// message, then finished with the vote buttons and the turn key.
	if m.Markdown != "Run **df -h**, then check /var/log." || m.Streaming {
		t.Errorf("streamed text %q (streaming %v), want the whole answer, stopped", m.Markdown, m.Streaming)
	}
	if md := metadataOf(t, m); md[mdTurn] != "slack:Ev1MENTION" || md[mdFinal] != true {
		t.Errorf("metadata payload %v, want turn slack:Ev1MENTION, final", md)
	}
	answerID, pmid := threadAnswer(t, e, "C1MENTION", ts)
	if pmid != m.TS {
		t.Errorf("platform message id %q, want the posted ts %s", pmid, m.TS)
	}
	if !strings.Contains(m.Blocks, `"value":"vote_up:`+answerID+`"`) || !strings.Contains(m.Blocks, `"value":"vote_down:`+answerID+`"`) {
		t.Errorf("blocks %s: want 👍/👎 buttons on answer %s", m.Blocks, answerID)
	}
	ana := e.userOf(t, "U1ANA")
	if ana.DisplayName != "Ana Reyes" || ana.TimeZone != "Asia/Manila" {
		t.Errorf("user from users.info: got %q in %s, want Ana Reyes in Asia/Manila", ana.DisplayName, ana.TimeZone)
	}
	if n := e.count(t, `SELECT count(*) FROM usage_events u JOIN messages m ON m.id = u.message_id WHERE m.id::text = $1`, answerID); n != 1 {
		t.Errorf("ledger rows %d, want 1", n)
	}
}

// Without chat.startStream the answer is posted, updated as it grows and
// finished as mrkdwn.
func TestAnswerRenderedAsMrkdwnWithoutStreaming(t *testing.T) {
	e := testEnv(t)
	e.slack.DisableStreaming("C2NOSTREAM")
	e.model.Script("disk full on web-03",
		answer("## Steps\n\n- Run **df -h**\n- Read [the runbook](https://wiki.example.com/disk)\n\n```bash\ndu -sh /var/* | sort -h\n```"))
	const ts = "1764000002.000100"
	mark := e.slack.Mark()
	e.deliverFrom(t, "T0NOSTREAM", "Ev2MD", slackfake.AppMention("U1ANA", "C2NOSTREAM", ts, "", "disk full on web-03"), 0)
	msgs := e.answers(t, "C2NOSTREAM", ts, 1)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1 (posted, then updated)", len(msgs))
	}
	var blocks []struct {
		Type string `json:"type"`
		Text struct {
			Text     string `json:"text"`
			Verbatim bool   `json:"verbatim"`
		} `json:"text"`
	}
	if err := json.Unmarshal([]byte(msgs[0].Blocks), &blocks); err != nil {
		t.Fatalf("blocks %q: %v", msgs[0].Blocks, err)
	}
	want := "*Steps*\n\n• Run *df -h*\n• Read <https://wiki.example.com/disk|the runbook>\n\n```\ndu -sh /var/* | sort -h\n```"
	if len(blocks) == 0 || blocks[0].Type != "section" || blocks[0].Text.Text != want || !blocks[0].Text.Verbatim {
		t.Errorf("first block %+v, want a verbatim section %q", blocks, want)
	}
	if md := metadataOf(t, msgs[0]); md[mdFinal] != true {
		t.Errorf("metadata %v: want final after the update", md)
	}
	posts := e.slack.CallsAfter(mark, methodPostMessage)
	if len(posts) != 1 || !strings.Contains(posts[0].Form.Get("metadata"), `"final":false`) {
		t.Errorf("chat.postMessage calls %v, want 1, marked unfinished", posts)
	}
	if n := len(e.slack.CallsAfter(mark, methodUpdate)); n < 1 {
		t.Errorf("chat.update calls %d, want at least the final one", n)
	}
}

func TestFollowUpWithoutMentionAnswered(t *testing.T) {
	e := testEnv(t)
	const root = "1764000003.000100"
	e.mentionAnswered(t, "Ev3A", "C3FOLLOW", root, "pods crash on deploy")

	// Slack also sends the mention as a channel message: answered once only.
	e.deliver(t, "Ev3DUP", slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", root, "", "<@"+slackfake.BotUserID+"> pods crash on deploy"), 0)
	// Things opsbot ignores, in the answered thread and elsewhere.
	edited := slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", "1764000003.000500", root, "edited")
	edited["subtype"] = "message_changed"
	botMsg := slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", "1764000003.000600", root, "from a bot")
	botMsg["bot_id"] = "B0OTHER"
	ours := slackfake.MessageEvent(slackfake.BotUserID, "C3FOLLOW", "channel", "1764000003.000650", root, "our own answer")
	join := slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", "1764000003.000700", "", "has joined")
	join["subtype"] = "channel_join"
	for id, ev := range map[string]map[string]any{"Ev3EDIT": edited, "Ev3BOT": botMsg, "Ev3OURS": ours, "Ev3JOIN": join,
		"Ev3OTHER": slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", "1764000003.000900", "1764000003.000800", "a thread without the bot")} {
		if resp := e.deliver(t, id, ev, 0); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: got %d, want 200 (acked, ignored)", id, resp.StatusCode)
		}
	}

	e.deliver(t, "Ev3B", slackfake.MessageEvent("U1ANA", "C3FOLLOW", "channel", "1764000003.000300", root, "and after a rollback?"), 0)
	msgs := e.answers(t, "C3FOLLOW", root, 2)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages in the thread, want 2 answers", len(msgs))
	}
	if n := e.count(t, `SELECT count(*) FROM inbound_events WHERE event_key LIKE 'Ev3%'`); n != 2 {
		t.Errorf("recorded events %d, want 2 (the mention and the follow-up)", n)
	}
	if n := e.count(t, `SELECT message_count FROM conversations WHERE thread_id = $1`, root); n != 4 {
		t.Errorf("thread conversation has %d messages, want 4", n)
	}
}

func TestDirectMessageAnswered(t *testing.T) {
	e := testEnv(t)
	const ts = "1764000004.000100"
	e.model.Script("how do I rotate the kafka creds?", answer("Use the secret-rotation runbook."))
	e.deliver(t, "Ev4DM", slackfake.MessageEvent("U2RAVI", "D4RAVI", "im", ts, "", "how do I rotate the kafka creds?"), 0)
	msgs := e.answers(t, "D4RAVI", ts, 1)
	if len(msgs) != 1 || msgs[0].Markdown != "Use the secret-rotation runbook." {
		t.Fatalf("DM thread: got %+v, want the answer", msgs)
	}
	// A token is handed out in a DM only, ephemerally, once.
	ravi := e.userOf(t, "U2RAVI")
	mark := e.slack.Mark()
	e.deliver(t, "Ev4TOKEN", slackfake.MessageEvent("U2RAVI", "D4RAVI", "im", "1764000004.000300", "", "token"), 0)
	testriver.WaitFor(t, "the token answer", func() bool { return len(e.slack.CallsAfter(mark, methodPostEphemeral)) == 1 })
	form := e.slack.CallsAfter(mark, methodPostEphemeral)[0].Form
	if form.Get("user") != "U2RAVI" || !strings.Contains(form.Get("blocks"), "shown only this once") {
		t.Errorf("token answer %v: want an ephemeral message to U2RAVI", form)
	}
	if n := e.count(t, `SELECT count(*) FROM api_tokens WHERE user_id = $1`, ravi.ID); n != 1 {
		t.Errorf("tokens %d, want 1", n)
	}
	if n := len(e.slack.InThread("D4RAVI", "1764000004.000300")); n != 0 {
		t.Errorf("the token was also posted for good (%d messages)", n)
	}
}

func TestConcurrentDeliveriesAnsweredOnce(t *testing.T) {
	e := testEnv(t)
	const ts = "1764000005.000100"
	const question = "is the VPN down for everyone?"
	body := slackfake.AppMention("U1ANA", "C5SAME", ts, "", question)
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	start := make(chan struct{})
	for retry := range 5 {
		wg.Go(func() {
			<-start
			codes <- e.deliver(t, "Ev5SAME", body, retry).StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a delivery got %d, want 200", c)
		}
	}
	e.answers(t, "C5SAME", ts, 1)
	time.Sleep(200 * time.Millisecond) // room for a second job, if there were one
	if n := e.model.CallsFor(question); n != 1 {
		t.Errorf("model calls %d, want 1", n)
	}
	if n := len(e.slack.InThread("C5SAME", ts)); n != 1 {
		t.Errorf("replies %d, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM usage_events u JOIN conversations c ON c.id = u.conversation_id WHERE c.thread_id = $1`, ts); n != 1 {
		t.Errorf("ledger rows %d, want 1", n)
	}
	if n := e.count(t, `SELECT count(*) FROM river_job WHERE kind = $1 AND args->>'key' = 'slack:Ev5SAME'`, bot.TurnKind); n != 1 {
		t.Errorf("turn jobs %d, want 1", n)
	}
}

func TestReplyPostedOnceAcrossACrash(t *testing.T) {
	for i, tt := range []struct {
		name   string
		stream bool
	}{{"posted", false}, {"streamed", true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := testEnv(t)
			event := "Ev6CRASH" + strconv.Itoa(i)
			key := "slack:" + event
			ts := "1764000006.00010" + strconv.Itoa(i)
			question := "cert expires tomorrow, " + tt.name
			e.replier.set(e.replier.crash, key)
			if !tt.stream {
				e.replier.set(e.replier.noStream, key)
			}
			mark := e.slack.Mark()
			e.deliver(t, event, slackfake.AppMention("U1ANA", "C6CRASH", ts, "", question), 0)
			testriver.WaitFor(t, "the job completed after its retry", func() bool {
				return e.count(t, `SELECT count(*) FROM river_job WHERE args->>'key' = $1 AND state = 'completed'`, key) == 1
			})
			msgs := e.slack.InThread("C6CRASH", ts)
			if len(msgs) != 1 {
				t.Fatalf("got %d replies, want 1", len(msgs))
			}
			_, pmid := threadAnswer(t, e, "C6CRASH", ts)
			attempt := e.count(t, `SELECT attempt FROM river_job WHERE args->>'key' = $1`, key)
			if !e.replier.didCrash(key) || attempt != 2 || pmid != msgs[0].TS {
				t.Errorf("crashed %v, attempts %d, recorded %q: want a crash, then a second attempt recording the first post %s",
					e.replier.didCrash(key), attempt, pmid, msgs[0].TS)
			}
			if n := len(e.slack.CallsAfter(mark, methodReplies)); n != 1 {
				t.Errorf("conversations.replies calls %d, want 1 (the retry looked)", n)
			}
			if n := e.model.CallsFor(question); n != 1 {
				t.Errorf("model calls %d, want 1", n)
			}
		})
	}
}

func TestSignaturesRefused(t *testing.T) {
	e := testEnv(t)
	body := slackfake.EventCallback("T0001", "Ev7FORGED", slackfake.AppMention("U7NOBODY", "C7SIG", "1764000007.000100", "", "hello"))
	now := time.Now().Unix()
	for _, tt := range []struct {
		name   string
		ts     int64
		secret string
		sig    string
	}{
		{"forged", now, "not-the-secret", ""},
		{"stale", now - 6*60, testSecret, ""},
		{"future", now + 6*60, testSecret, ""},
		{"missing", now, "", "-"},
		{"garbled", now, "", "v0=zz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tsStr := strconv.FormatInt(tt.ts, 10)
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathEvents, strings.NewReader(string(body)))
			req.Header.Set("X-Slack-Request-Timestamp", tsStr)
			switch tt.sig {
			case "":
				req.Header.Set("X-Slack-Signature", slackfake.Sign(tt.secret, tsStr, body))
			case "-":
			default:
				req.Header.Set("X-Slack-Signature", tt.sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("got %d, want 401", resp.StatusCode)
			}
		})
	}
	for _, path := range []string{PathCommands, PathInteractivity} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader("text=usage"))
		req.Header.Set("X-Slack-Request-Timestamp", "1764000000")
		req.Header.Set("X-Slack-Signature", slackfake.Sign(testSecret, "1764000000", []byte("text=usage")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("stale %s: got %d, want 401", path, resp.StatusCode)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM inbound_events WHERE event_key = 'Ev7FORGED'`) +
		e.count(t, `SELECT count(*) FROM identities WHERE external_id = 'U7NOBODY'`); n != 0 {
		t.Errorf("refused requests left %d rows", n)
	}
	// Signed but broken, or too big: clear statuses, nothing recorded.
	if resp := e.post(t, PathEvents, "application/json", []byte(`{"type":`), nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("malformed JSON: got %d, want 422", resp.StatusCode)
	}
	if resp := e.post(t, PathCommands, "application/x-www-form-urlencoded", []byte("text=usage"), nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("slash command without team, user, channel: got %d, want 422", resp.StatusCode)
	}
	if resp := e.post(t, PathInteractivity, "application/x-www-form-urlencoded", []byte("payload=%7B"), nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("bad interaction payload: got %d, want 422", resp.StatusCode)
	}
	big := []byte(`{"type":"event_callback","pad":"` + strings.Repeat("x", maxEventBytes) + `"}`)
	if resp := e.post(t, PathEvents, "application/json", big, nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize event: got %d, want 413", resp.StatusCode)
	}
	resp := e.post(t, PathEvents, "application/json", []byte(`{"type":"url_verification","token":"x","challenge":"c-123"}`), nil)
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || got["challenge"] != "c-123" {
		t.Errorf("url_verification: %d %v (%v), want 200 and the challenge", resp.StatusCode, got, err)
	}
}

// A model that is down gets the person a sentence in the thread, not
// silence.
func TestModelDownToldInTheThread(t *testing.T) {
	e := testEnv(t)
	const q = "why is checkout slow?"
	e.model.Script(q, modelfake.Reply{Status: http.StatusServiceUnavailable})
	msgs := e.mentionAnswered(t, "Ev22DOWN", "C22DOWN", "1764000022.000100", q)
	want := escape(bot.UserMessage(&bot.ModelError{Kind: bot.ModelUnavailable}))
	if len(msgs) != 1 || msgs[0].Text != want {
		t.Errorf("thread %+v, want the one-line notice %q", msgs, want)
	}
	if n := e.count(t, `SELECT count(*) FROM usage_events`); n != 0 {
		t.Errorf("ledger rows %d, want none for a failed turn", n)
	}
}
