package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestLoadTeamsConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	c, err := loadTeamsConfig(env(map[string]string{"TEAMS_APP_ID": "a", "TEAMS_APP_PASSWORD": "p", "TEAMS_TENANT_ID": "contoso-tenant"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenURL != "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token" ||
		c.OpenIDMetadataURL != "https://login.botframework.com/v1/.well-known/openidconfiguration" || !c.surfaceOn() {
		t.Errorf("got %+v, want the tenant's token URL, Microsoft's metadata and the surface on", c)
	}
	c, err = loadTeamsConfig(env(map[string]string{"TEAMS_TENANT_ID": "t", "TEAMS_TOKEN_URL": "http://127.0.0.1:9/token",
		"TEAMS_OPENID_METADATA_URL": "http://localhost:9/openid"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenURL != "http://127.0.0.1:9/token" || c.OpenIDMetadataURL != "http://localhost:9/openid" || c.surfaceOn() {
		t.Errorf("got %+v, want the local overrides and the surface off without an app id", c)
	}
	for _, bad := range []map[string]string{
		{"TEAMS_OPENID_METADATA_URL": "http://login.example.com/openid"},
		{"TEAMS_TOKEN_URL": "http://10.0.0.5/token"},
		{"TEAMS_OPENID_METADATA_URL": "not a url"},
	} {
		if _, err := LoadConfig(env(bad)); err == nil {
			t.Errorf("%v: loaded, want refused (keys must come over https)", bad)
		}
	}
}

func TestTeamsSurfaceOnlyWhenConfigured(t *testing.T) {
	var logs bytes.Buffer
	d := surfaceDeps{pool: testPool, log: slog.New(slog.NewTextHandler(&logs, nil))}
	s, err := newTeamsSurface(Config{}, d)
	if err != nil || s != nil {
		t.Fatalf("unconfigured: %v, %v; want no surface", s, err)
	}
	if n := strings.Count(logs.String(), "Teams is off"); n != 1 {
		t.Errorf("log %q: want one line saying Teams is off", logs.String())
	}
	tc, err := loadTeamsConfig(func(k string) string {
		return map[string]string{"TEAMS_APP_ID": "a", "TEAMS_APP_PASSWORD": "s3cret-teams-pw", "TEAMS_TENANT_ID": "t"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	d.teamsTokens = newTeamsTokens(tc)
	s, err = newTeamsSurface(Config{Teams: tc}, d)
	if err != nil || s == nil {
		t.Fatalf("configured: %v, %v; want the surface", s, err)
	}
	mounts := s.mounts(nil)
	if s.platform != "teams" || s.replier == nil || len(mounts) != 1 || mounts[0].Method != http.MethodPost ||
		mounts[0].Path != "/api/messages" || mounts[0].MaxBodyBytes <= 0 {
		t.Errorf("surface %+v mounts %+v, want the teams replier and POST /api/messages with a body limit", s, mounts)
	}
	if strings.Contains(logs.String(), "s3cret-teams-pw") {
		t.Errorf("log %q mentions the password", logs.String())
	}
}
