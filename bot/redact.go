package bot

import "github.com/apacops/opsbot/redact"

// Redact returns s with every secret it recognises (gitleaks' maintained
// rule set and opsbot's own ops rules, see package redact) replaced by a
// marker naming its kind, "[REDACTED:slack-token]". The engine redacts what
// goes to the model, to the logs and, unless OPSBOT_STORE_RAW is set, to the
// database.
func Redact(s string) string { return redact.String(s) }

// withoutMarkers drops redaction markers from already redacted text, for
// runbook search: "[REDACTED:slack-token]" would otherwise count as three
// question words no runbook has, and sink the sections that do match.
func withoutMarkers(s string) string { return redact.StripMarkers(s) }
