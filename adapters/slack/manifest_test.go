package slack

import (
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack/socketmode"
	"go.yaml.in/yaml/v3"

	"github.com/apacops/opsbot/commands"
)

// manifest is the part of a Slack app manifest the code must agree with.
type manifest struct {
	Features struct {
		BotUser *struct {
			DisplayName string `yaml:"display_name"`
		} `yaml:"bot_user"`
		AssistantView *struct {
			SuggestedPrompts []struct {
				Title   string `yaml:"title"`
				Message string `yaml:"message"`
			} `yaml:"suggested_prompts"`
		} `yaml:"assistant_view"`
		SlashCommands []struct {
			Command     string `yaml:"command"`
			URL         string `yaml:"url"`
			Description string `yaml:"description"`
		} `yaml:"slash_commands"`
	} `yaml:"features"`
	OAuth struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Events *struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		Interactivity *struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		SocketMode *bool `yaml:"socket_mode_enabled"`
	} `yaml:"settings"`
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func pathOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		t.Errorf("request URL %q: want an https URL", raw)
		return ""
	}
	return u.Path
}

// The manifest declares exactly what the code uses: every scope the Web
// API calls and event subscriptions need and no other, the events the
// handler acts on, the slash command with every shared command, the
// request URLs of the routes the code serves, and the assistant panel's
// prompts.
func TestManifestMatchesTheCode(t *testing.T) {
	raw, err := os.ReadFile("../../manifests/slack/manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("parse manifest: %v", err)
	}

	// Scopes, both ways.
	var need []string
	for _, scopes := range apiScopes {
		need = append(need, scopes...)
	}
	need = append(need, slices.Collect(maps.Values(eventScopes))...)
	need = append(need, "commands") // the slash command
	if got, want := sorted(m.OAuth.Scopes.Bot), sorted(need); !slices.Equal(got, want) {
		t.Errorf("bot scopes:\n manifest %v\n code     %v", got, want)
	}

	// Events, both ways; every message channel type is subscribed.
	if m.Settings.Events == nil {
		t.Fatal("manifest has no event subscriptions")
	}
	if got, want := sorted(m.Settings.Events.BotEvents), sorted(slices.Collect(maps.Keys(eventScopes))); !slices.Equal(got, want) {
		t.Errorf("bot events:\n manifest %v\n code     %v", got, want)
	}
	for ct, sub := range messageSubscriptions {
		if _, ok := eventScopes[sub]; !ok {
			t.Errorf("message events of channel type %s arrive through %s, which is not subscribed", ct, sub)
		}
	}

	// Request URLs are exactly the routes the code serves.
	var paths []string
	for _, r := range sharedEnv.app.Routes(sharedEnv.inbox) {
		paths = append(paths, r.Path)
	}
	if len(m.Features.SlashCommands) != 1 {
		t.Fatalf("slash commands %d, want 1", len(m.Features.SlashCommands))
	}
	sc := m.Features.SlashCommands[0]
	if m.Settings.Interactivity == nil || !m.Settings.Interactivity.IsEnabled {
		t.Fatal("interactivity is off: the Archive, Undo and vote buttons need it")
	}
	manifestPaths := []string{pathOf(t, m.Settings.Events.RequestURL), pathOf(t, sc.URL), pathOf(t, m.Settings.Interactivity.RequestURL)}
	if got, want := sorted(manifestPaths), sorted(paths); !slices.Equal(got, want) {
		t.Errorf("request URL paths:\n manifest %v\n routes   %v", got, want)
	}
	if m.Settings.SocketMode == nil {
		t.Error("socket_mode_enabled is not set")
	}
	// Socket Mode carries the same three kinds of request.
	if want := []socketmode.EventType{socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand,
		socketmode.EventTypeInteractive}; !slices.Equal(socketRequests, want) {
		t.Errorf("Socket Mode handles %v, want %v", socketRequests, want)
	}

	// The slash command and its description: every shared command.
	if sc.Command != SlashCommand {
		t.Errorf("slash command %q, want %q", sc.Command, SlashCommand)
	}
	for _, spec := range commands.Specs() {
		if entry := strings.TrimSpace(spec.Name + " " + spec.Args); !strings.Contains(sc.Description, entry) {
			t.Errorf("slash command description %q lacks %q", sc.Description, entry)
		}
	}

	// The assistant panel: the prompts the code sets are the manifest's.
	if m.Features.AssistantView == nil || m.Features.BotUser == nil {
		t.Fatal("manifest has no assistant_view or bot_user")
	}
	var prompts []string
	for _, p := range m.Features.AssistantView.SuggestedPrompts {
		prompts = append(prompts, p.Title+": "+p.Message)
	}
	var code []string
	for _, p := range suggestedPrompts {
		code = append(code, p.Title+": "+p.Message)
	}
	if !slices.Equal(prompts, code) {
		t.Errorf("suggested prompts:\n manifest %v\n code     %v", prompts, code)
	}
}
