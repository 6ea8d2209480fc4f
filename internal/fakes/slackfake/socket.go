package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Envelope is a Socket Mode envelope Slack sends.
type Envelope struct {
	ID   string
	Type string // events_api, slash_commands, interactive
	// Payload is marshalled as is (a json.RawMessage is sent untouched).
	Payload any
	Retry   int // retry_attempt: 0 on the first delivery
}

// Ack is the app's answer to an envelope.
type Ack struct {
	Payload json.RawMessage // a slash command's answer; empty for events
	At      time.Time       // when the fake read it
}

// sockets are the open Socket Mode connections; each replica of the app
// opens its own, and Send spreads envelopes over them as Slack does.
type sockets struct {
	mu    sync.Mutex
	conns []*sockConn
	next  int
}

type sockConn struct {
	ws *websocket.Conn
	mu sync.Mutex // one writer at a time
}

func (s *Server) addSock(c *sockConn) int {
	s.socks.mu.Lock()
	defer s.socks.mu.Unlock()
	s.socks.conns = append(s.socks.conns, c)
	return len(s.socks.conns)
}

func (s *Server) removeSock(c *sockConn) {
	s.socks.mu.Lock()
	defer s.socks.mu.Unlock()
	s.socks.conns = slices.DeleteFunc(s.socks.conns, func(o *sockConn) bool { return o == c })
}

// Sockets counts the open Socket Mode connections.
func (s *Server) Sockets() int {
	s.socks.mu.Lock()
	defer s.socks.mu.Unlock()
	return len(s.socks.conns)
}

// DropSockets closes every Socket Mode connection, as Slack does when it
// refreshes them.
func (s *Server) DropSockets() {
	s.socks.mu.Lock()
	defer s.socks.mu.Unlock()
	for _, c := range s.socks.conns {
		_ = c.ws.Close()
	}
	s.socks.conns = nil
}

// serveSocket is the Socket Mode WebSocket behind apps.connections.open:
// hello, then the envelopes Send gives it; acks are collected; pings keep
// slack-go's watchdog content.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	// slack-go dials with Origin: https://api.slack.com, as Slack expects.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &sockConn{ws: ws}
	c.mu.Lock()
	n := s.addSock(c)
	err = ws.WriteJSON(map[string]any{"type": "hello", "num_connections": n,
		"connection_info": map[string]any{"app_id": "A0OPS"}, "debug_info": map[string]any{"host": "fake"}})
	c.mu.Unlock()
	defer s.removeSock(c)
	if err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)) != nil {
					return
				}
			}
		}
	}()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := ws.ReadJSON(&ack); err != nil {
			return
		}
		s.mu.Lock()
		s.acks[ack.EnvelopeID] = Ack{Payload: ack.Payload, At: time.Now()}
		s.notify()
		s.mu.Unlock()
	}
}

// Send delivers an envelope over one of the open Socket Mode connections
// (in turn), waiting for one to open until ctx ends.
func (s *Server) Send(ctx context.Context, e Envelope) error {
	raw, err := json.Marshal(e.Payload)
	if err != nil {
		return fmt.Errorf("envelope %s payload: %w", e.ID, err)
	}
	msg := map[string]any{"envelope_id": e.ID, "type": e.Type, "payload": json.RawMessage(raw),
		"accepts_response_payload": e.Type == "slash_commands", "retry_attempt": e.Retry, "retry_reason": ""}
	for {
		s.socks.mu.Lock()
		var c *sockConn
		if n := len(s.socks.conns); n > 0 {
			c = s.socks.conns[s.socks.next%n]
			s.socks.next++
		}
		s.socks.mu.Unlock()
		if c != nil {
			c.mu.Lock()
			err := c.ws.WriteJSON(msg)
			c.mu.Unlock()
			if err != nil {
				return fmt.Errorf("send envelope %s: %w", e.ID, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("send envelope %s: no Socket Mode connection: %w", e.ID, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// WaitAck waits for an envelope's ack.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var a Ack
	err := s.waitUntil(ctx, func() bool {
		var ok bool
		a, ok = s.acks[envelopeID]
		return ok
	})
	if err != nil {
		return Ack{}, fmt.Errorf("envelope %s not acked: %w", envelopeID, err)
	}
	return a, nil
}

// Acked reports whether an envelope was acked.
func (s *Server) Acked(envelopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.acks[envelopeID]
	return ok
}
