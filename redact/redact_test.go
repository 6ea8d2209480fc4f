package redact

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// The corpus below holds fake secrets in the real formats. Each case names
// the secret that must disappear and the marker that must replace it.
func TestRedact(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		secret string // must not survive
		want   string // must be in the output
	}{
		{"slack bot token", "bot token is xoxb-2222222222-3333333333333-AbCdEfGhIjKlMnOpQrStUvWx ok?",
			"xoxb-2222222222-3333333333333-AbCdEfGhIjKlMnOpQrStUvWx", "[REDACTED:slack-token] ok?"},
		{"slack user token", "xoxp-1234567890-1234567890-1234567890-0123456789abcdef0123456789abcdef",
			"xoxp-1234567890", "[REDACTED:slack-token]"},
		{"slack client token", "curl -H 'Authorization: xoxc-1234567890-1234567890-1234567890-abcdef0123456789'",
			"xoxc-1234567890-1234567890", "[REDACTED:slack-token]"},
		{"slack cookie", "d=xoxd-AbCdEf%2BGhIjKlMnOpQrStUv%3D%3D; other=1",
			"xoxd-AbCdEf%2BGhIjKlMnOpQrStUv", "d=[REDACTED:slack-token]; other=1"},
		{"slack app token", "SLACK_APP_TOKEN=xapp-1-A0123456789-1234567890123-0123456789abcdef0123456789abcdef",
			"xapp-1-A0123456789", "[REDACTED:slack-app-token]"},
		{"slack webhook", "post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX please",
			"T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "[REDACTED:slack-webhook] please"},
		{"github classic token", "git clone https://ghp_1A2b3C4d5E6f7G8h9I0j1K2l3M4n5O6p7Q8r@github.com/acme/ops.git",
			"ghp_1A2b3C4d5E6f7G8h9I0j1K2l3M4n5O6p7Q8r", "[REDACTED:"},
		{"github oauth token", "token gho_16C7e42F292c6912E7710c838347Ae178B4a",
			"gho_16C7e42F292c6912E7710c838347Ae178B4a", "token [REDACTED:github-token]"},
		{"github fine-grained token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123",
			"github_pat_11ABCDEFG", "[REDACTED:github-token]"},
		{"aws access key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
			"AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws-access-key]"},
		{"aws secret key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED:aws-secret-key]"},
		{"aws secret key in json", `{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`,
			"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[REDACTED:aws-secret-key]"},
		{"gcp api key", "key=AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q&q=x",
			"AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "[REDACTED:"},
		{"gcp access token", "gcloud gave me ya29.a0AfH6SMBx-EXAMPLE_token_0123456789abcdefghij for the API",
			"a0AfH6SMBx-EXAMPLE_token_0123456789abcdefghij", "[REDACTED:gcp-access-token] for the API"},
		{"aws session token", "aws_session_token = IQoJb3JpZ2luX2VjEXAMPLEtoken0123456789abcdefABCDEF+/==",
			"IQoJb3JpZ2luX2VjEXAMPLEtoken", "aws_session_token = [REDACTED:password]"},
		{"gcp service account json", `{"type": "service_account", "private_key_id": "0123456789abcdef0123456789abcdef01234567", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n", "client_email": "bot@proj.iam.gserviceaccount.com"}`,
			"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", `"private_key": "[REDACTED:private-key]\n"`},
		{"gcp private key id", `"private_key_id": "0123456789abcdef0123456789abcdef01234567"`,
			"0123456789abcdef0123456789abcdef01234567", `"private_key_id": [REDACTED:gcp-private-key-id]`},
		{"pem rsa key", "here:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75p1TU0mEXAMPLE\nAbCdEf==\n-----END RSA PRIVATE KEY-----\nthanks",
			"MIIEpAIBAAKCAQEA75p1TU0mEXAMPLE", "here:\n[REDACTED:private-key]\nthanks"},
		{"pem openssh key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
			"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "[REDACTED:private-key]"},
		{"pem key cut off before its END line", "key:\n-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\nMIIEpAIBAAKCAQEA75p1TU0mEXAMPLEabcdefghijklmnop\nAbCdEfGhIjKlMnOp==\nwhy does ssh refuse it?",
			"MIIEpAIBAAKCAQEA75p1TU0mEXAMPLE", "key:\n[REDACTED:private-key]\nwhy does ssh refuse it?"},
		{"pem key cut off, in json", `{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nAbCdEfGhIjKlMnOpQrSt`,
			"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", `{"private_key": "[REDACTED:private-key]`},
		{"pem key on one line", "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ b3BlbnNzaC1rZXktdjEAAAAA",
			"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "[REDACTED:private-key]"},
		{"pgp private key block", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0AAAAAAAAAAAAAAAAAAAAAAAAA\n=AbCd\n-----END PGP PRIVATE KEY BLOCK-----",
			"lQOYBF0AAAAAAAAAAAAAAAAAAAAAAAAA", "[REDACTED:private-key]"},
		{"bearer header", "curl -H 'Authorization: Bearer abcDEF123456ghiJKL789.mno_pqr-stu' https://api",
			"abcDEF123456ghiJKL789.mno_pqr-stu", "Authorization: Bearer [REDACTED:bearer-token]'"},
		{"basic auth header", "Authorization: Basic dXNlcjpodW50ZXIyMjIy",
			"dXNlcjpodW50ZXIyMjIy", "Authorization: Basic [REDACTED:basic-auth]"},
		{"postgres url password", "DATABASE_URL=postgres://app:s3cr3t-P4ss@db.internal:5432/app?sslmode=require",
			"s3cr3t-P4ss", "postgres://app:[REDACTED:password]@db.internal:5432/app"},
		{"mongodb srv password", "mongodb+srv://admin:Tr0ub4dor&3@cluster0.example.net/test",
			"Tr0ub4dor&3", "mongodb+srv://admin:[REDACTED:password]@cluster0"},
		{"redis url without user", "redis://:hunter2hunter2@cache:6379/0",
			"hunter2hunter2", "redis://:[REDACTED:password]@cache"},
		{"key value password", "host=db user=app password=Sup3rS3cret dbname=app",
			"Sup3rS3cret", "password=[REDACTED:password] dbname=app"},
		{"yaml password", "  password: 'correct-horse-battery'\n",
			"correct-horse-battery", "password: '[REDACTED:password]'"},
		{"prefixed env password", "DB_PASSWORD=Sup3rS3cret docker compose up",
			"Sup3rS3cret", "DB_PASSWORD=[REDACTED:password] docker"},
		{"PGPASSWORD", "PGPASSWORD=hunter2hunter2 psql -h db",
			"hunter2hunter2", "PGPASSWORD=[REDACTED:password] psql"},
		{"MYSQL_PWD", "MYSQL_PWD=hunter2hunter2 mysql",
			"hunter2hunter2", "MYSQL_PWD=[REDACTED:password] mysql"},
		{"quoted password with spaces", `POSTGRES_PASSWORD="correct horse battery staple"`,
			"horse battery staple", `POSTGRES_PASSWORD="[REDACTED:password]"`},
		{"json password", `{"user": "app", "password": "hunter two 22"}`,
			"hunter two 22", `"password": "[REDACTED:password]"}`},
		{"api key header", "curl -H 'x-api-key: 0123456789abcdef0123456789abcdef' https://api",
			"0123456789abcdef0123456789abcdef", "x-api-key: [REDACTED:password]'"},
		{"jwt", "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c expired",
			"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "token [REDACTED:jwt] expired"},
		{"opsbot api token", "my token opsbot_q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c",
			"opsbot_q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c", "my token [REDACTED:opsbot-token]"},
		{"openai key", "OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
			"sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "[REDACTED:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := String(tt.in)
			if strings.Contains(got, tt.secret) {
				t.Errorf("Redact(%q) = %q, still holds %q", tt.in, got, tt.secret)
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("Redact(%q) = %q, want it to contain %q", tt.in, got, tt.want)
			}
		})
	}
}

// Ordinary ops chatter must pass through untouched.
func TestRedactLeavesOrdinaryText(t *testing.T) {
	keep := []string{
		"How do I restart the payments service in ap-southeast-1?",
		"Connect with psql postgres://db.internal:5432/app and run VACUUM",
		"see https://wiki.example.com/runbooks/db-failover#step-3",
		"the request id was 3f2b8c1e-9d4a-4b6f-8e2a-1c5d7e9f0a3b, commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
		"The bearer of this note is on call; basic troubleshooting first.",
		"password rotation is due next week",
		"the k8s secret is called db-creds; the AKIA prefix means an IAM user key",
		"xoxb tokens start with xoxb-, never paste them",
		"Where is the private key for the deploy user? The api key rotates monthly.",
		"中文消息：请重启服务 (restart please) ที่ไหน",
	}
	for _, s := range keep {
		if got := String(s); got != s {
			t.Errorf("Redact(%q) = %q, want it unchanged", s, got)
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	msg := strings.Repeat("Our deploy to ap-southeast-1 failed at step 3 with a timeout; logs attached. ", 40) +
		"DATABASE_URL=postgres://app:s3cr3t@db:5432/app"
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = String(msg)
	}
}

// The worst case: a 16 KiB message in which every rule's hint occurs, so
// every regexp runs over all of it.
func BenchmarkRedactWorstCase(b *testing.B) {
	line := "the api key and token for https://svc and basic bearer auth, secret xox xapp- ghp_ AKIA AIza sk- opsbot_ eyJ private key----- pwd. "
	msg := strings.Repeat(line, 16*1024/len(line))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = String(msg)
	}
}

// One Redactor serves every goroutine (run with -race): each text gets the
// answer it gets alone.
func TestConcurrentUse(t *testing.T) {
	r := Default()
	cases := readCorpus(t, "secrets.txt")
	want := make([]string, len(cases))
	for i, c := range cases {
		want[i] = r.Redact(c.text)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cases {
				j := (i + g) % len(cases)
				if got := r.Redact(cases[j].text); got != want[j] {
					errs <- fmt.Sprintf("%s: got %q, want %q", cases[j].name, got, want[j])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Every one of gitleaks' generated "identifier = value" rules is tried
// anchored at its keywords behind its cheap head, with a first window that
// keeps the generic rule on the fast matcher: a gitleaks upgrade that
// changed their shape would otherwise cost the 16 KiB benchmark tenfold
// without failing a test.
func TestSemiGenericRulesAreAnchored(t *testing.T) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		t.Fatal(err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range vc.Rules {
		if strings.HasPrefix(r.Regex, `(?i)[\w.-]{0,50}?(?:`) {
			want++
		}
	}
	got := 0
	for _, r := range Default().rules {
		if r.anchored && r.gate != nil && r.firstWindow == anchoredWindow {
			got++
		}
	}
	if want < 90 || got < want {
		t.Errorf("anchored, gated rules: got %d, want at least the %d semi-generic rules of gitleaks' config (and at least 90)", got, want)
	}
}
