package redact

import (
	"regexp"
	"strings"
)

// ownRules are opsbot's rules for what ops people paste and gitleaks
// leaves alone or names less usefully: credentials in URLs and key/value
// connection strings, labelled passwords, secrets and tokens, CLI password
// flags, private keys (also cut off before their END line), Azure
// connection-string keys, unlabelled AWS secret keys and opsbot's own API
// tokens.
func ownRules() []*rule {
	rs := []*rule{
		// PEM private keys, including those inside service-account JSON
		// where the newlines are written as \n.
		{name: "private-key", keywords: []string{"private key"}, toEnd: true,
			re: regexp.MustCompile(`-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----`)},
		// A key pasted without its END line (cut off by the sender or a
		// chat client): the header lines and base64 lines after BEGIN,
		// written with newlines, \n escapes or spaces. A body line is a
		// header ("Proc-Type: 4,ENCRYPTED"), a base64 run of 16 or more,
		// or a padded tail; prose after the key stops the match.
		{name: "private-key", keywords: []string{"private key"}, toEnd: true,
			re: regexp.MustCompile(`-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:(?:\s|\\[rn])+(?:[A-Za-z0-9-]+: ?[^\s\\]+|[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]*={1,2}))*`)},
		{name: "gcp-private-key-id", keywords: []string{`"private_key_id"`}, group: 1,
			re: regexp.MustCompile(`"private_key_id"[ \t]*:[ \t]*("[0-9a-fA-F]{16,}")`)},
		{name: "slack-token", keywords: []string{"xox"}, re: regexp.MustCompile(`\bxox[abcdposre]-[A-Za-z0-9%-]{10,}`)},
		{name: "slack-app-token", keywords: []string{"xapp-"}, re: regexp.MustCompile(`\bxapp-\d-[A-Za-z0-9-]{10,}`)},
		{name: "slack-webhook", keywords: []string{"hooks.slack.com/"},
			re: regexp.MustCompile(`https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+`)},
		{name: "teams-webhook", keywords: []string{".webhook.office.com/", "outlook.office.com/webhook"},
			re: regexp.MustCompile(`https://[A-Za-z0-9.-]*(?:\.webhook\.office\.com|outlook\.office\.com)/webhook(?:b2)?/[^\s"'<>]+`)},
		// Teams workflow (Power Automate) webhooks carry their secret in sig=.
		{name: "teams-webhook", keywords: []string{".logic.azure.com", ".environment.api.powerplatform.com"},
			re: regexp.MustCompile(`https://[A-Za-z0-9.-]+\.(?:logic\.azure\.com|environment\.api\.powerplatform\.com)(?::\d+)?/[^\s"'<>]*[?&]sig=[^\s"'<>&]+`)},
		{name: "github-token", keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, re: regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}`)},
		{name: "github-token", keywords: []string{"github_pat_"}, re: regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{30,}`)},
		{name: "aws-access-key", keywords: []string{"akia", "asia", "abia", "acca"},
			re: regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`)},
		{name: "aws-secret-key", keywords: []string{"secret"}, group: 1, labelled: true,
			re: regexp.MustCompile(`(?i)(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9/+]{40})`)},
		{name: "azure-storage-key", keywords: []string{"accountkey", "sharedaccesskey"}, group: 1,
			re: regexp.MustCompile(`(?i)\b(?:AccountKey|SharedAccessKey)[ \t]*=[ \t]*([A-Za-z0-9+/]{20,}={0,2})`)},
		{name: "azure-sas-signature", keywords: []string{"sig="}, group: 1,
			re: regexp.MustCompile(`[?&]sig=([A-Za-z0-9%+/=]{20,})`)},
		{name: "gcp-api-key", keywords: []string{"aiza"}, re: regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
		// Google OAuth access tokens (gcloud auth print-access-token).
		{name: "gcp-access-token", keywords: []string{"ya29."}, re: regexp.MustCompile(`\bya29\.[0-9A-Za-z_-]{20,}`)},
		{name: "openai-key", keywords: []string{"sk-"}, re: regexp.MustCompile(`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}`)},
		{name: "opsbot-token", keywords: []string{"opsbot_"}, re: regexp.MustCompile(`\bopsbot_[A-Za-z0-9_-]{20,}`)},
		{name: "jwt", keywords: []string{"eyj"}, re: regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}`)},
		{generic: true, name: "bearer-token", keywords: []string{"bearer"}, group: 1,
			re: regexp.MustCompile(`(?i)\bbearer[ \t]+([A-Za-z0-9._~+/-]{16,}=*)`)},
		{generic: true, name: "basic-auth", keywords: []string{"basic"}, group: 1,
			re: regexp.MustCompile(`(?i)\bauthorization["']?[ \t]*[:=][ \t]*["']?basic[ \t]+([A-Za-z0-9+/]{8,}={0,2})`)},
		// user:password@host in any URL (postgres://, mongodb+srv://,
		// amqp://, https://). The user name stays; only the password goes.
		{generic: true, name: "password", keywords: []string{"://"}, group: 1,
			re: regexp.MustCompile(`://[^\s:/@]*:([^\s@/]+)@`)},
		// password=... in key/value connection strings, configs and env
		// files. The name is matched inside longer keys too (DB_PASSWORD,
		// PGPASSWORD, MYSQL_PWD, X-Api-Key); a quoted value is redacted up
		// to its closing quote, spaces and all.
		{generic: true, name: "password", keywords: []string{"pass", "pwd", "key", "token", "secret"}, group: 1, unquote: true, labelled: true,
			re:     regexp.MustCompile(`(?i)` + strongKeyNames + `["']?[ \t]*[:=][ \t]*("[^"\n]{4,}"|'[^'\n]{4,}'|["']?[^\s"';&,]{4,})`),
			accept: notPlaceholder},
		// A bare "secret" or "token" label is weaker evidence ("token:
		// rotate it monthly"), so its value must look like one: 8 or more
		// characters with a letter and a digit, or quoted.
		{generic: true, name: "password", keywords: []string{"secret", "token"}, group: 1, unquote: true, labelled: true,
			re:     regexp.MustCompile(`(?i)(?:secret|token)["']?[ \t]*[:=][ \t]*("[^"\n]{8,}"|'[^'\n]{8,}'|[^\s"';&,]{8,})`),
			accept: valueLooksSecret},
		// CLI password flags: mysql -pPASS (no space: a lone -p prompts),
		// sshpass -p PASS, redis-cli -a PASS, and --password PASS.
		{generic: true, name: "cli-password", keywords: []string{"mysql", "mariadb"}, group: 1, unquote: true,
			re: regexp.MustCompile(`\b(?:mysql|mysqldump|mysqladmin|mysqlcheck|mysqlimport|mariadb|mariadb-dump)\b[^\n]*?[ \t]-p('[^'\n]+'|"[^"\n]+"|[^\s'"\x60]+)`)},
		{generic: true, name: "cli-password", keywords: []string{"sshpass"}, group: 1, unquote: true,
			re: regexp.MustCompile(`\bsshpass[ \t]+-p[ \t]*('[^'\n]+'|"[^"\n]+"|\S+)`)},
		{generic: true, name: "cli-password", keywords: []string{"docker login"}, group: 1, unquote: true,
			re: regexp.MustCompile(`\bdocker[ \t]+login\b[^\n]*?[ \t](?:-p|--password)[ \t]+('[^'\n]+'|"[^"\n]+"|\S+)`)},
		{generic: true, name: "cli-password", keywords: []string{"redis-cli"}, group: 1, unquote: true,
			re: regexp.MustCompile(`\bredis-cli\b[^\n]*?[ \t](?:-a|--pass)[ \t]+('[^'\n]+'|"[^"\n]+"|\S+)`)},
		{generic: true, name: "cli-password", keywords: []string{"--pass", "--token", "--secret", "--api-key", "--apikey"}, group: 1, unquote: true,
			re: regexp.MustCompile(`(?m)(?:^|[ \t])--(?:password|passwd|pass|token|secret|api-key|apikey|client-secret)[ \t]+('[^'\n]+'|"[^"\n]+"|[^\s'"-]\S*)`)},
		// curl -u user:password (and --user); the user name stays.
		{generic: true, name: "password", keywords: []string{"curl"}, group: 1, unquote: true,
			re: regexp.MustCompile(`\bcurl\b[^\n]*?[ \t](?:-u|--user)[ \t]*['"]?[^\s:'"]*:([^\s'"]+)`)},
		// An AWS secret key pasted with no label ("AKIA... wJalr..."): a
		// run of exactly 40 base64 characters mixing upper case, lower
		// case and digits, as random as a key is. Last, so that a rule
		// that knows the context (bearer-token) names the marker.
		{generic: true, name: "aws-secret-key", scan: scanBase64Runs(40, 4.0)},
	}
	for _, r := range rs {
		newRule(r)
	}
	return rs
}

// strongKeyNames are key names whose values are secrets whatever they look
// like.
const strongKeyNames = `(?:password|passwd|passphrase|pwd|api[_-]?key|secret_?key|access_?token|auth_?token|refresh_?token|session_?token|client_?secret|private_?token)`

// placeholder matches values that stand for a secret without being one:
// $VAR, ${VAR}, %VAR%, <your key>, {{ .Values.x }}, ****, null, and
// @file references (vault kv put, curl -d).
var placeholder = regexp.MustCompile(`^(?:@[\w~-]*[./][\w./~-]*|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%[A-Za-z_]+%|<.*|\{\{.*|\*+|(?i:null|none|nil|changeme))$`)

// notPlaceholder accepts a labelled value unless it is a placeholder.
func notPlaceholder(sc *scan, _, s [2]int) bool {
	return !placeholder.MatchString(sc.text[s[0]:s[1]])
}

// valueLooksSecret accepts a labelled value that is quoted, or has a
// letter and a digit, and is not a placeholder.
func valueLooksSecret(sc *scan, m, s [2]int) bool {
	if !notPlaceholder(sc, m, s) {
		return false
	}
	v := sc.text[s[0]:s[1]]
	if s[0] > 0 && (sc.text[s[0]-1] == '"' || sc.text[s[0]-1] == '\'') {
		return true
	}
	return strings.ContainsAny(v, "0123456789") && strings.IndexFunc(v, isLetter) >= 0
}

func isLetter(c rune) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// scanBase64Runs finds runs of exactly n characters of [A-Za-z0-9+/] (not
// part of a longer run, not followed by = padding) that mix upper case,
// lower case and digits and whose entropy exceeds minEntropy.
func scanBase64Runs(n int, minEntropy float64) func(sc *scan) [][2]int {
	return func(sc *scan) [][2]int {
		var out [][2]int
		s := sc.text
		for i := 0; i < len(s); {
			if base64Class[s[i]] == 0 {
				i++
				continue
			}
			j := i
			var seen uint8
			for j < len(s) && base64Class[s[j]] != 0 {
				seen |= base64Class[s[j]]
				j++
			}
			if j-i == n && seen&(classUpper|classLower|classDigit) == classUpper|classLower|classDigit &&
				(j == len(s) || s[j] != '=') && shannonEntropy(s[i:j]) > minEntropy {
				out = append(out, [2]int{i, j})
			}
			i = j
		}
		return out
	}
}

// Character classes of base64 bytes, for scanBase64Runs.
const (
	classUpper uint8 = 1 << iota
	classLower
	classDigit
	classSymbol
)

var base64Class = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = classUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = classLower
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = classDigit
	}
	t['+'], t['/'] = classSymbol, classSymbol
	return t
}()
