package bot

import (
	"regexp"
	"strings"
)

// Redaction replaces secrets people paste into chat (tokens, keys, passwords)
// before the text goes to the model, to a log or, unless OPSBOT_STORE_RAW is
// set, to the database. Each rule keeps enough context for the reader to see
// what was there ("[REDACTED:aws-access-key]") and never the secret itself.

type redactRule struct {
	name string
	re   *regexp.Regexp
	// keep is the number of the submatch to keep before the marker (a
	// "Bearer " prefix, a "postgres://user:" prefix); 0 replaces the match.
	keep int
	// suffix is written after the marker (the "@" of user:pass@host).
	suffix string
	// quoted means submatch keep+1 is the secret value, possibly in quotes,
	// which stay around the marker.
	quoted bool
	// hints are literals one of which every match contains; a text with
	// none of them skips the regexp. They are matched against the
	// lower-cased text.
	hints []string
}

var redactRules = []redactRule{
	// PEM private keys, including those inside service-account JSON where
	// the newlines are written as \n.
	{name: "private-key", re: regexp.MustCompile(`-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----`), hints: []string{"private key"}},
	// A key pasted without its END line (cut off by the sender or a chat
	// client): the header lines and base64 lines after BEGIN, written with
	// newlines, \n escapes or spaces. A body line is a header ("Proc-Type:
	// 4,ENCRYPTED"), a base64 run of 16 or more, or a padded tail; prose after
	// the key stops the match.
	{name: "private-key", re: regexp.MustCompile(`-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:(?:\s|\\[rn])+(?:[A-Za-z0-9-]+: ?[^\s\\]+|[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]*={1,2}))*`), hints: []string{"private key"}},
	{name: "gcp-private-key-id", re: regexp.MustCompile(`("private_key_id"\s*:\s*)"[0-9a-fA-F]{16,}"`), keep: 1, hints: []string{`"private_key_id"`}},
	{name: "slack-token", re: regexp.MustCompile(`\bxox[abcdposre]-[A-Za-z0-9%-]{10,}`), hints: []string{"xox"}},
	{name: "slack-app-token", re: regexp.MustCompile(`\bxapp-\d-[A-Za-z0-9-]{10,}`), hints: []string{"xapp-"}},
	{name: "slack-webhook", re: regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+`), hints: []string{"hooks.slack.com/"}},
	{name: "github-token", re: regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}`), hints: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}},
	{name: "github-token", re: regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{30,}`), hints: []string{"github_pat_"}},
	{name: "aws-access-key", re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`), hints: []string{"akia", "asia", "abia", "acca"}},
	{name: "aws-secret-key", re: regexp.MustCompile(`(?i)((?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?\s*[:=]\s*["']?)[A-Za-z0-9/+]{40}`), keep: 1, hints: []string{"secret"}},
	{name: "gcp-api-key", re: regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`), hints: []string{"aiza"}},
	// Google OAuth access tokens (gcloud auth print-access-token).
	{name: "gcp-access-token", re: regexp.MustCompile(`\bya29\.[0-9A-Za-z_-]{20,}`), hints: []string{"ya29."}},
	{name: "openai-key", re: regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}`), hints: []string{"sk-"}},
	{name: "opsbot-token", re: regexp.MustCompile(`\bopsbot_[A-Za-z0-9_-]{20,}`), hints: []string{"opsbot_"}},
	{name: "jwt", re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}`), hints: []string{"eyj"}},
	{name: "bearer-token", re: regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9._~+/-]{16,}=*`), keep: 1, hints: []string{"bearer"}},
	{name: "basic-auth", re: regexp.MustCompile(`(?i)(\bauthorization["']?\s*[:=]\s*["']?basic\s+)[A-Za-z0-9+/]{8,}={0,2}`), keep: 1, hints: []string{"basic"}},
	// user:password@host in any URL (postgres://, mongodb+srv://, amqp://,
	// https://). The user name stays; only the password goes. The match
	// starts at "://" so that the search can look for that literal.
	{name: "password", re: regexp.MustCompile(`(://[^\s:/@]*:)[^\s@/]+@`), keep: 1, suffix: "@", hints: []string{"://"}},
	// password=... in key/value connection strings, configs and env files.
	// The name is matched inside longer keys too (DB_PASSWORD, PGPASSWORD,
	// MYSQL_PWD, X-Api-Key); a quoted value is redacted up to its closing
	// quote, spaces and all.
	{name: "password", re: regexp.MustCompile(`(?i)(` + secretKeyNames + `["']?\s*[:=]\s*)("[^"\n]{4,}"|'[^'\n]{4,}'|["']?[^\s"';&,]{4,})`),
		keep: 1, quoted: true, hints: secretKeyHints},
}

// secretKeyNames are the key names whose values are secrets in key/value
// text; secretKeyHints are literals one of which each contains.
const secretKeyNames = `(?:password|passwd|pwd|api[_-]?key|secret_?key|access_?token|auth_?token|session_?token|client_?secret)`

var secretKeyHints = []string{"pass", "pwd", "key", "token", "secret"}

// Redact returns s with every secret it recognises replaced by a marker
// naming its kind.
func Redact(s string) string {
	lower := strings.ToLower(s)
	for _, r := range redactRules {
		if !containsAny(lower, r.hints) || !r.re.MatchString(s) {
			continue
		}
		marker := "[REDACTED:" + r.name + "]" + r.suffix
		if r.keep == 0 {
			s = r.re.ReplaceAllLiteralString(s, marker)
			continue
		}
		s = r.re.ReplaceAllStringFunc(s, func(m string) string {
			sub := r.re.FindStringSubmatch(m)
			if r.quoted {
				return sub[r.keep] + requote(sub[r.keep+1], marker)
			}
			return sub[r.keep] + marker
		})
	}
	return s
}

// redactionMarker matches the markers Redact writes.
var redactionMarker = regexp.MustCompile(`\[REDACTED:[a-z0-9-]+\]`)

// withoutMarkers drops redaction markers from already redacted text, for
// runbook search: "[REDACTED:slack-token]" would otherwise count as three
// question words no runbook has, and sink the sections that do match.
func withoutMarkers(s string) string {
	if !strings.Contains(s, "[REDACTED:") {
		return s
	}
	return redactionMarker.ReplaceAllLiteralString(s, " ")
}

// requote puts marker in the place of value, keeping the quotes value had:
// "secret" becomes "marker", an unclosed "secret becomes "marker.
func requote(value, marker string) string {
	if value == "" || (value[0] != '"' && value[0] != '\'') {
		return marker
	}
	q := value[:1]
	if len(value) > 1 && strings.HasSuffix(value, q) {
		return q + marker + q
	}
	return q + marker
}

func containsAny(s string, subs []string) bool {
	if len(subs) == 0 {
		return true
	}
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
