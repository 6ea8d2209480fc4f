package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apacops/opsbot/internal/sqlstats"
)

// memory is a process's resident set now and its high-water mark, from
// /proc/<pid>/status (VmRSS, VmHWM).
type memory struct {
	RSS, HWM int64 // bytes
}

// readMemory reads a process's memory figures; zeros when it cannot.
func readMemory(pid int) memory {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}
	}
	return parseStatus(string(raw))
}

func parseStatus(status string) memory {
	var m memory
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.HWM = kb << 10
		}
	}
	return m
}

// readSQL fetches the server's cumulative SQL figures from GET /debug/sql
// on its profiling address; ok is false when the server does not serve
// them (a 404 from a server without the endpoint).
func readSQL(ctx context.Context, pprofAddr string) (s sqlstats.Stats, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddr+"/debug/sql", nil)
	if err != nil {
		return s, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, false
	}
	return s, true
}
