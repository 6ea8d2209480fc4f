package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apacops/opsbot/internal/fakes/modelfake"
)

// clearModelEnv makes the test independent of the developer's environment.
func clearModelEnv(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPSBOT_MODEL", "AZURE_OPENAI_ENDPOINT",
		"AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT", "OPSBOT_PRICES_FILE", "OPSBOT_STORE_RAW", "OPSBOT_MODEL_TIMEOUT",
		"OPSBOT_MODEL_FIRST_TOKEN_TIMEOUT"} {
		t.Setenv(k, "")
	}
}

func countWhere(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := testPool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestChatWithModel(t *testing.T) {
	clearModelEnv(t)
	t.Setenv("OPENAI_BASE_URL", modelfake.ForTest(t, modelfake.Reply{Chunks: []string{"Restart ", "it."}, Usage: &modelfake.Usage{Prompt: 12, Completion: 3}}).BaseURL())
	handle := "chatter-" + uuid.NewString()[:8]
	stdin := "why is api-7 down?\n/usage\n/new\nand db-2?\n/archive\n/undo\n/list\n/bogus\n/quit\n"
	code, out, errOut := runCmd(t, stdin, "chat", "--user", handle)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	for _, want := range []string{
		"opsbot chat as " + handle + ", gpt-4o-mini.",
		"bot> Restart it.\n",
		// 12 x 0.15 + 3 x 0.60 = 3.6 micro-USD, rounded to 4.
		"(gpt-4o-mini · 12 in / 3 out tokens · $0.000004)",
		"this conversation: 1 replies, 15 tokens (12 in, 3 out), $0.000004",
		"Your usage, last 30 days (",
		"$0.000004 · 15 tokens (12 in, 3 out) · 1 replies",
		"New conversation: your next message starts it.",
		`Archived "and db-2?". Undo brings it back.` + "\n(/undo restores it)",
		`Restored "and db-2?".`,
		"Your open conversations, newest first:\n1. and db-2? — 2 messages",
		`I don't know the command "bogus"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := countWhere(t, `SELECT count(*) FROM conversations c JOIN users u ON u.id = c.owner_id
		WHERE u.handle = $1 AND c.source = 'console'`, handle); n != 2 {
		t.Errorf("console conversations = %d, want 2", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM conversations c JOIN users u ON u.id = c.owner_id
		WHERE u.handle = $1 AND c.archived_at IS NOT NULL`, handle); n != 0 {
		t.Errorf("archived conversations = %d, want 0 (archived, then undone)", n)
	}
	if n := countWhere(t, `SELECT count(*) FROM usage_events e JOIN users u ON u.id = e.user_id
		WHERE u.handle = $1 AND e.source = 'console' AND e.cost_micro_usd = 4`, handle); n != 2 {
		t.Errorf("ledger rows = %d, want 2", n)
	}
}

func TestChatWithoutModelAndResume(t *testing.T) {
	clearModelEnv(t)
	handle := "nomodel-" + uuid.NewString()[:8]
	code, out, errOut := runCmd(t, "qqzx wibble frotz?\n", "chat", "--user", handle)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	if !strings.Contains(out, "no model (answers from runbooks)") || !strings.Contains(out, "No language model is configured") ||
		!strings.Contains(out, "(none · 0 in / 0 out tokens · $0.00)") {
		t.Errorf("output:\n%s", out)
	}
	var conv uuid.UUID
	if err := testPool.QueryRow(context.Background(), `SELECT c.id FROM conversations c JOIN users u ON u.id = c.owner_id
		WHERE u.handle = $1`, handle).Scan(&conv); err != nil {
		t.Fatalf("conversation: %v", err)
	}
	code, out, _ = runCmd(t, "", "chat", "--user", handle, "--conversation", conv.String())
	if code != 0 || !strings.Contains(out, `continuing "qqzx wibble frotz?" (2 messages)`) || !strings.Contains(out, "you> qqzx wibble frotz?") {
		t.Errorf("resume: exit %d, output:\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "", "chat", "--user", handle, "--conversation", "nope"); code != 2 {
		t.Errorf("bad --conversation: exit %d, want 2", code)
	}
}

// Ctrl-C (the context ending) while the chat waits for input ends it at
// once, without waiting for the next line.
func TestChatLeavesOnSignalWhileWaiting(t *testing.T) {
	clearModelEnv(t)
	t.Setenv("DATABASE_URL", testPool.Config().ConnString())
	pr, pw := io.Pipe() // a terminal nobody types into
	t.Cleanup(func() { pw.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	var errb bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"chat", "--user", "waiter-" + uuid.NewString()[:8]}, pr, &out, &errb)
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "you> "); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no prompt")
		}
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chat still waiting for input after the signal")
	}
}

// lockedBuffer is a bytes.Buffer one goroutine writes while another reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
