package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/apacops/opsbot/commands"
)

type teamsManifest struct {
	ID   string `json:"id"`
	Bots []struct {
		BotID        string   `json:"botId"`
		Scopes       []string `json:"scopes"`
		CommandLists []struct {
			Scopes   []string `json:"scopes"`
			Commands []struct {
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"commands"`
		} `json:"commandLists"`
	} `json:"bots"`
	Icons struct{ Color, Outline string } `json:"icons"`
}

// The manifest's command lists are the shared command set: all of it in
// personal chats, all but token (which answers only there) in teams and
// group chats.
func TestManifestCommandsAreTheCommandSet(t *testing.T) {
	var m teamsManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Bots) != 1 || !slices.Equal(m.Bots[0].Scopes, []string{"personal", "team", "groupChat"}) {
		t.Fatalf("bots %+v, want one bot in personal, team and groupChat", m.Bots)
	}
	// A command's title is its name, with a word argument ("usage team")
	// but not an optional one ("usage [7d|30d]").
	var want []string
	for _, s := range commands.Specs() {
		title := s.Name
		if s.Args != "" && !strings.HasPrefix(s.Args, "[") {
			title += " " + s.Args
		}
		want = append(want, title+": "+s.Summary)
	}
	lists := map[string][]string{}
	for _, l := range m.Bots[0].CommandLists {
		var got []string
		for _, c := range l.Commands {
			got = append(got, c.Title+": "+c.Description)
		}
		lists[strings.Join(l.Scopes, ",")] = got
	}
	if got := lists["personal"]; !slices.Equal(got, want) {
		t.Errorf("personal commands:\n got %q\nwant %q", got, want)
	}
	noToken := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return strings.HasPrefix(s, "token:") })
	if got := lists["team,groupChat"]; !slices.Equal(got, noToken) {
		t.Errorf("team and group chat commands:\n got %q\nwant %q", got, noToken)
	}
}

func TestPackage(t *testing.T) {
	const appID = "6c0e8f5e-1234-4abc-8def-0123456789ab"
	zipped, err := pack(appID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range r.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var m teamsManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json in the zip: %v", err)
	}
	if m.ID != appID || m.Bots[0].BotID != appID || bytes.Contains(files["manifest.json"], []byte("${")) {
		t.Errorf("id %q, botId %q: want the app id substituted everywhere", m.ID, m.Bots[0].BotID)
	}
	for name, size := range map[string]int{m.Icons.Color: 192, m.Icons.Outline: 32} {
		img, err := png.Decode(bytes.NewReader(files[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Errorf("%s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), size, size)
		}
	}
	for _, bad := range []string{"", "not-a-guid", appID + "\"}"} {
		if _, err := pack(bad); err == nil {
			t.Errorf("app id %q: packaged, want refused", bad)
		}
	}
}
