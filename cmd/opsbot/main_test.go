package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apacops/opsbot/internal/testdb"
)

// testPool is this package's fresh, migrated database.
var testPool *pgxpool.Pool

// processEnv, set to 1, makes the test binary run opsbot itself, with its
// arguments, instead of the tests: the fault tests (make test-faults)
// start real serve processes this way, which they can SIGKILL, with no
// separate build of the binary.
const processEnv = "OPSBOT_TEST_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(processEnv) == "1" {
		main()
	}
	os.Exit(testdb.RunMain(m, &testPool))
}

// runCmd runs the binary's run() against the package database and returns
// the exit code and outputs.
func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("DATABASE_URL", testPool.Config().ConnString())
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// lastLine is what scripts read: the token is the last line of stdout.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, _, errOut := runCmd(t, ""); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Errorf("no args: got %d %q, want 2 and usage", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown: got %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "", "token", "create"); code != 2 {
		t.Errorf("token create without --user: got %d, want 2", code)
	}
}

// A connection string that does not parse is reported without its password,
// however mangled the string is.
func TestBadDatabaseURLNeverPrintsThePassword(t *testing.T) {
	urls := map[string]string{
		"unescaped @ in password": "postgres://app:p@ss-w0rd@db/app?sslmode=bogus",
		"bad percent escape":      "postgres://app:s3cr%zzet@db/app",
		"bad port":                "postgres://app:s3cr3t-pw@db:notaport/app",
		"key/value":               "host=db password=s3cr3t-pw sslmode=bogus",
	}
	for name, u := range urls {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", u)
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"migrate"}, strings.NewReader(""), &out, &errb)
			if code == 0 {
				t.Fatalf("migrate with %q succeeded", u)
			}
			for _, secret := range []string{"ss-w0rd", "s3cr", "s3cr3t-pw"} {
				if strings.Contains(errb.String()+out.String(), secret) {
					t.Errorf("output %q contains the password", errb.String())
				}
			}
			if !strings.Contains(errb.String(), "parse DATABASE_URL: ") {
				t.Errorf("output %q does not say what is wrong", errb.String())
			}
		})
	}
}

// The closing error line quotes what the user typed; a secret typed there
// (here as a user handle) is not echoed back to the terminal or the logs.
func TestErrorLineIsRedacted(t *testing.T) {
	const secret = "ghp_1A2b3C4d5E6f7G8h9I0j1K2l3M4n5O6p7Q8r"
	code, _, errOut := runCmd(t, "", "usage", "report", "--user", secret)
	if code != 2 {
		t.Fatalf("usage report for an unknown user: got exit %d, want 2 (stderr %q)", code, errOut)
	}
	if strings.Contains(errOut, secret) || !strings.Contains(errOut, "[REDACTED:github-token]") {
		t.Errorf("stderr %q: want the token replaced by [REDACTED:github-token]", errOut)
	}
}
