package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/apacops/opsbot/internal/sqlstats"
	"github.com/apacops/opsbot/users"
)

// freeAddr finds a loopback port nobody is listening on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SIGTERM (the context ending) lets a request that is already in flight
// finish, then serve returns 0.
func TestServeDrainsOnShutdown(t *testing.T) {
	addr, pprofAt := freeAddr(t), freeAddr(t)
	t.Setenv("OPSBOT_ADDR", addr)
	t.Setenv("OPSBOT_PPROF_ADDR", pprofAt)
	t.Setenv("DATABASE_URL", testPool.Config().ConnString())
	store := users.NewStore(testPool, "Asia/Singapore")
	u, err := store.Ensure(context.Background(), "drain-user", users.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := store.CreateToken(context.Background(), u.ID, "drain")
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	go func() {
		var out, errb bytes.Buffer
		exited <- run(ctx, []string{"serve"}, nil, &out, &errb)
	}()
	base := "http://" + addr
	waitHealthy(t, base)
	// OPSBOT_PPROF_ADDR turns the profiling endpoint on.
	if resp, err := http.Get("http://" + pprofAt + "/debug/pprof/cmdline"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("pprof endpoint: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	// Beside the profiles, the statements the server has sent so far (it
	// has at least checked the migrations).
	if resp, err := http.Get("http://" + pprofAt + "/debug/sql"); err != nil {
		t.Errorf("/debug/sql: %v", err)
	} else {
		var st sqlstats.Stats
		err := json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.Statements == 0 || st.RoundTrips == 0 {
			t.Errorf("/debug/sql = %+v, %v; want statements counted", st, err)
		}
	}

	// Start a request whose body arrives slowly, so it is in flight at SIGTERM.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/api/v1/conversations", pr)
	req.Header.Set("Authorization", "Bearer "+secret)
	req.ContentLength = int64(len(`{"title":"in flight"}`))
	got := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"title":`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept the connection
	cancel()
	// Finish the body only once shutdown has begun (the listener is closed),
	// so the request is really in flight at SIGTERM.
	waitRefused(t, addr)
	if _, err := pw.Write([]byte(`"in flight"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	if status := <-got; status != http.StatusCreated {
		t.Errorf("in-flight request: got %d, want 201", status)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("serve exit code: got %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after shutdown")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("server still answering after shutdown")
	}
}

// waitRefused waits until nothing accepts connections on addr.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server still accepting connections after shutdown began")
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server did not become healthy")
}
