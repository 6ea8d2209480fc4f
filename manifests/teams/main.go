// Command teams packages the Teams app an admin uploads (make
// teams-package): manifest.json with the bot's app id substituted, and its
// two icons, in one zip.
//
//	go run ./manifests/teams -app-id $TEAMS_APP_ID -out bin/opsbot-teams.zip
package main

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
)

var (
	//go:embed manifest.json
	manifest []byte
	//go:embed color.png
	colorIcon []byte
	//go:embed outline.png
	outlineIcon []byte
)

// appIDPattern is an Azure app (client) id: a GUID.
var appIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// placeholder is what the app id replaces in manifest.json.
const placeholder = "${TEAMS_APP_ID}"

func main() {
	appID := flag.String("app-id", os.Getenv("TEAMS_APP_ID"), "the bot's Azure app id (default $TEAMS_APP_ID)")
	out := flag.String("out", "bin/opsbot-teams.zip", "the zip to write")
	flag.Parse()
	zipped, err := pack(*appID)
	if err == nil {
		err = os.WriteFile(*out, zipped, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "teams package:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}

// pack builds the app package for appID.
func pack(appID string) ([]byte, error) {
	if !appIDPattern.MatchString(appID) {
		return nil, errors.New("the app id (TEAMS_APP_ID) must be the bot's Azure app id, a GUID")
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"manifest.json", bytes.ReplaceAll(manifest, []byte(placeholder), []byte(appID))},
		{"color.png", colorIcon},
		{"outline.png", outlineIcon},
	} {
		w, err := z.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
