package slackfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Sign computes Slack's request signature: v0= and the hex HMAC-SHA256,
// keyed by the signing secret, of "v0:<timestamp>:<body>".
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignRequest signs req, whose body is body, as Slack does at now: the
// X-Slack-Request-Timestamp and X-Slack-Signature headers.
func SignRequest(req *http.Request, secret string, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Sign(secret, ts, body))
}

// EventCallback is an Events API event_callback body from team, as Slack
// sends it (over HTTP, or as a Socket Mode events_api payload).
func EventCallback(team, eventID string, event map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"token": "legacy-verification-token", "team_id": team, "api_app_id": "A0OPS", "type": "event_callback",
		"event_id": eventID, "event_time": 1764000000, "event": event,
		"authorizations": []any{map[string]any{"team_id": team, "user_id": BotUserID, "is_bot": true}},
	})
	return b
}

// AppMention is an app_mention event: user mentions the bot in channel,
// in the thread threadTS ("" for a new one).
func AppMention(user, channel, ts, threadTS, text string) map[string]any {
	ev := map[string]any{"type": "app_mention", "user": user, "text": "<@" + BotUserID + "> " + text, "ts": ts,
		"channel": channel, "event_ts": ts}
	if threadTS != "" {
		ev["thread_ts"] = threadTS
	}
	return ev
}

// MessageEvent is a message event; channelType is im, channel, group or
// mpim.
func MessageEvent(user, channel, channelType, ts, threadTS, text string) map[string]any {
	ev := map[string]any{"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
		"channel_type": channelType, "event_ts": ts}
	if threadTS != "" {
		ev["thread_ts"] = threadTS
	}
	return ev
}
