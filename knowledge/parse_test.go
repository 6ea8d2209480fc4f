package knowledge

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		text      string
		wantTitle string
		want      []section
	}{
		{
			name: "atx headings with paths", file: "db.md",
			text:      "# DB failover\n\nIntro text.\n\n## Check\n\npatronictl list\n\n### Deeper\n\nmore\n\n## Switch ##\n\nswitchover\n",
			wantTitle: "DB failover",
			want: []section{
				{"DB failover", "DB failover", "Intro text."},
				{"Check", "DB failover > Check", "patronictl list"},
				{"Deeper", "DB failover > Check > Deeper", "more"},
				{"Switch", "DB failover > Switch", "switchover"},
			},
		},
		{
			name: "code fences hide comment lines", file: "x.md",
			text:      "# Disk\n\n```sh\n# not a heading\ndf -h\n```\n\n~~~\n## nor this\n~~~\n",
			wantTitle: "Disk",
			want:      []section{{"Disk", "Disk", "```sh\n# not a heading\ndf -h\n```\n\n~~~\n## nor this\n~~~"}},
		},
		{
			name: "setext headings and inline markup", file: "s.md",
			text:      "Kafka `lag`\n==========\n\ntext\n\nSee [the docs](http://x)\n------------------------\n\nbody\n",
			wantTitle: "Kafka lag",
			want: []section{
				{"Kafka lag", "Kafka lag", "text"},
				{"See the docs", "Kafka lag > See the docs", "body"},
			},
		},
		{
			name: "front matter title, no h1, empty heading dropped", file: "dns/propagation.md",
			text:      "---\ntitle: \"DNS propagation\"\nowner: net\n---\n## Empty\n## Check\n\ndig +trace\n",
			wantTitle: "DNS propagation",
			want:      []section{{"Check", "DNS propagation > Check", "dig +trace"}},
		},
		{
			name: "plain text is one section titled from the file name", file: "bgp_session-down.txt",
			text:      "\ufeffBGP down.\r\n# not a heading in text\r\n",
			wantTitle: "bgp session down",
			want:      []section{{"bgp session down", "bgp session down", "BGP down.\n# not a heading in text"}},
		},
		{
			name: "empty file", file: "empty.md", text: "", wantTitle: "empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := parseDocument(tt.file, tt.text)
			if doc.title != tt.wantTitle {
				t.Errorf("title = %q, want %q", doc.title, tt.wantTitle)
			}
			if !reflect.DeepEqual(doc.sections, tt.want) {
				t.Errorf("sections =\n%#v\nwant\n%#v", doc.sections, tt.want)
			}
		})
	}
}

func TestParseSplitsLongSections(t *testing.T) {
	para := strings.Repeat("word ", 300) // 1500 bytes
	text := "# Big\n\n" + strings.Repeat(para+"\n\n", 10) + strings.Repeat("é", 8000)
	doc := parseDocument("big.md", text)
	if len(doc.sections) < 4 {
		t.Fatalf("got %d sections, want the long one split into at least 4", len(doc.sections))
	}
	total := 0
	for i, s := range doc.sections {
		if len(s.content) > maxSectionChars {
			t.Errorf("part %d is %d bytes, want at most %d", i, len(s.content), maxSectionChars)
		}
		if !strings.HasPrefix(s.title, "Big") || s.path != "Big" {
			t.Errorf("part %d title %q path %q, want Big…", i, s.title, s.path)
		}
		total += len(strings.Join(strings.Fields(s.content), ""))
	}
	if doc.sections[1].title != "Big (part 2)" {
		t.Errorf("second part title %q, want %q", doc.sections[1].title, "Big (part 2)")
	}
	if want := 3000*len("word") + len(strings.Repeat("é", 8000)); total != want {
		t.Errorf("parts hold %d non-space bytes, want %d (nothing lost)", total, want)
	}
}
