// Package serveproc starts `opsbot serve` as a process of its own on a
// loopback port, waits until it answers /healthz, and stops it: the fault
// tests (make test-faults) and the load tool (cmd/opsbot-load) run real
// servers this way, so that they can SIGTERM or SIGKILL them and read
// their memory from /proc.
package serveproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says how to start a server.
type Config struct {
	// Path is the binary; Args its arguments (["serve"]).
	Path string
	Args []string
	// Env is the server's configuration. The process gets this
	// process's environment less every variable opsbot reads
	// (DATABASE_URL, OPSBOT_*, SLACK_*, OPENAI_*, AZURE_*, TEAMS_*), then
	// Env, then OPSBOT_ADDR.
	Env map[string]string
	// Addr is the listen address; "" picks a free loopback port.
	Addr string
	// Logs receives the server's stdout and stderr; nil keeps them in
	// memory for Process.Logs.
	Logs io.Writer
	// Ready bounds the wait for /healthz; 0 is 30 s.
	Ready time.Duration
}

// Process is a running server.
type Process struct {
	// Base is its HTTP root, http://127.0.0.1:port.
	Base string
	cmd  *exec.Cmd
	logs *Buffer // nil when Config.Logs was given
	done chan struct{}
	code int
}

// FreeAddr finds a loopback address nobody listens on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Environ is base (os.Environ's form) less every variable opsbot reads,
// with set added.
func Environ(base []string, set map[string]string) []string {
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "DATABASE_URL", strings.HasPrefix(k, "OPSBOT_"), strings.HasPrefix(k, "SLACK_"),
			strings.HasPrefix(k, "OPENAI_"), strings.HasPrefix(k, "AZURE_"), strings.HasPrefix(k, "TEAMS_"):
			continue // only what the caller sets
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// Start starts a server and waits until it answers /healthz. If it
// exits first or is not healthy in time it is killed, and the error
// carries its log when the log is kept in memory.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	addr := cfg.Addr
	if addr == "" {
		var err error
		if addr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	p := &Process{Base: "http://" + addr, cmd: exec.Command(cfg.Path, cfg.Args...), done: make(chan struct{})}
	p.cmd.Env = append(Environ(os.Environ(), cfg.Env), "OPSBOT_ADDR="+addr)
	out := cfg.Logs
	if out == nil {
		p.logs = &Buffer{}
		out = p.logs
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Path, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	ready := cfg.Ready
	if ready <= 0 {
		ready = 30 * time.Second
	}
	deadline := time.Now().Add(ready)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(p.Base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("server exited with %d before serving%s", p.code, p.logTail())
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("server not healthy after %s%s", ready, p.logTail())
		}
	}
}

func (p *Process) logTail() string {
	if p.logs == nil {
		return ""
	}
	return ":\n" + p.logs.String()
}

// Pid is the server's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the server has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the server's exit status once Done is closed; -1 when a
// signal ended it.
func (p *Process) ExitCode() int {
	<-p.done
	return p.code
}

// Logs is what the server wrote so far, when Config.Logs was nil.
func (p *Process) Logs() string {
	if p.logs == nil {
		return ""
	}
	return p.logs.String()
}

// Kill ends the server with SIGKILL, as the OOM killer or a lost node
// would, and waits for it; a server that already exited is left alone.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// ErrStillRunning is returned by Term when the server outlives its limit.
var ErrStillRunning = errors.New("server still running after SIGTERM")

// Term sends SIGTERM and waits up to limit for the server to exit; it
// returns the exit code.
func (p *Process) Term(limit time.Duration) (int, error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.done:
		return p.code, nil
	case <-time.After(limit):
		return 0, fmt.Errorf("%w (%s)", ErrStillRunning, limit)
	}
}

// Buffer is a bytes.Buffer one goroutine writes while another reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
