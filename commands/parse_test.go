package commands

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		text string
		want Invocation
	}{
		{"", Invocation{Name: CmdHelp}},
		{"help", Invocation{Name: CmdHelp}},
		{"HELP", Invocation{Name: CmdHelp}},
		{"?", Invocation{Name: CmdHelp}},
		{"/new", Invocation{Name: CmdNew}},
		{"list", Invocation{Name: CmdList}},
		{"archive", Invocation{Name: CmdArchive}},
		{"Archive this.", Invocation{Name: CmdArchive}},
		{"token", Invocation{Name: CmdToken}},
		{"usage", Invocation{Name: CmdUsage, Days: 30}},
		{"Usage 7D", Invocation{Name: CmdUsage, Days: 7}},
		{"usage  30d", Invocation{Name: CmdUsage, Days: 30}},
		{"usage 14", Invocation{Name: CmdUsage, Days: 14}},
		{"usage 2w", Invocation{Name: CmdUsage, Days: 14}},
		{"usage team", Invocation{Name: CmdUsage, Days: 30, Team: true}},
		{"usage team 7d", Invocation{Name: CmdUsage, Days: 7, Team: true}},
		{"usage 7d team", Invocation{Name: CmdUsage, Days: 7, Team: true}},
		{"usage 91d", Invocation{Name: CmdUsage, Days: 30, Problem: "usage takes a number of days such as 7d or 30d (at most 90d), and team"}},
		{"usage yesterday", Invocation{Name: CmdUsage, Days: 30, Problem: "usage takes a number of days such as 7d or 30d (at most 90d), and team"}},
		{"handover", Invocation{Name: CmdHandover, Hours: 12}},
		{"handover 8h", Invocation{Name: CmdHandover, Hours: 8}},
		{"handover 1d", Invocation{Name: CmdHandover, Hours: 24}},
		{"handover 0h", Invocation{Name: CmdHandover, Hours: 12, Problem: "handover takes a number of hours such as 8h or 12h (at most 168h)"}},
		{"handover 169h", Invocation{Name: CmdHandover, Hours: 12, Problem: "handover takes a number of hours such as 8h or 12h (at most 168h)"}},
		{"frobnicate the db", Invocation{Name: CmdHelp, Unknown: "frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := Parse(tt.text); got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		text string
		want Invocation // zero: not a command
	}{
		{"help", Invocation{Name: CmdHelp}},
		{"archive", Invocation{Name: CmdArchive}},
		{"archive this please", Invocation{Name: CmdArchive}},
		{"new conversation", Invocation{Name: CmdNew}},
		{"Usage 7d", Invocation{Name: CmdUsage, Days: 7}},
		{"usage team", Invocation{Name: CmdUsage, Days: 30, Team: true}},
		{"handover 8h", Invocation{Name: CmdHandover, Hours: 8}},
		// Questions, not commands.
		{"help me with the disk on web-03", Invocation{}},
		{"list the pods that crash", Invocation{}},
		{"new pods keep crashlooping", Invocation{}},
		{"usage of /var on db-sg-02 is 97%", Invocation{}},
		{"handover the on-call pager", Invocation{}},
		{"token expired on the vault agent", Invocation{}},
		{"how do I archive kafka topics?", Invocation{}},
		{"", Invocation{}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, ok := ParseMessage(tt.text)
			if ok != (tt.want.Name != "") || (ok && got != tt.want) {
				t.Errorf("ParseMessage(%q) = %+v, %v; want %+v, %v", tt.text, got, ok, tt.want, tt.want.Name != "")
			}
		})
	}
}

func TestActionValueRoundTrip(t *testing.T) {
	for _, a := range VoteActions([16]byte{1, 2, 3}) {
		got, err := ParseAction(a.Value())
		if err != nil || got.Kind != a.Kind || got.ID != a.ID {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v", a.Value(), got, err, a)
		}
	}
	for _, bad := range []string{"", "archive", "delete:0b3f1c1e-9d2a-4c1b-8e2f-3a4b5c6d7e8f", "archive:not-a-uuid", "vote_up:"} {
		if _, err := ParseAction(bad); err == nil {
			t.Errorf("ParseAction(%q) succeeded, want ErrBadAction", bad)
		}
	}
}
