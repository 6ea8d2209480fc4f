package knowledge

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxSectionChars bounds one section's text so a citation (and the prompt
// context built from it) stays small; longer sections are split at
// paragraph boundaries into parts.
const maxSectionChars = 6000

// headingSep joins the titles of a section's heading path.
const headingSep = " > "

// embedText is what a section's embedding is computed from, and hashed for
// (knowledge_sections.embed_sha, migration 005 computes the same): the
// heading path, which starts with the document title, then the text.
func embedText(headingPath, content string) string {
	return headingPath + "\n\n" + content
}

// maxTitleBytes bounds a heading or document title. A longer "heading" is a
// pasted line, not a title, and its words would be indexed three times
// (title, heading path, both configs): a long enough one exceeds
// PostgreSQL's 1 MB tsvector limit and fails the document.
const maxTitleBytes = 200

// section is one heading's worth of a document.
type section struct {
	title   string
	path    string // "Document > Heading > Subheading"
	content string
}

// parsedDoc is a file split into sections.
type parsedDoc struct {
	title    string
	sections []section
}

var (
	atxHeading    = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	setextH1      = regexp.MustCompile(`^ {0,3}=+[ \t]*$`)
	setextH2      = regexp.MustCompile(`^ {0,3}-+[ \t]*$`)
	fenceOpen     = regexp.MustCompile("^ {0,3}(```+|~~~+)")
	mdLink        = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	frontMatterKV = regexp.MustCompile(`(?m)^title:[ \t]*["']?(.*?)["']?[ \t]*$`)
)

// isMarkdown reports whether name is parsed as Markdown (else plain text).
func isMarkdown(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".md" || ext == ".markdown"
}

// parseDocument splits a file's text into sections. Markdown is split at ATX
// (#) and setext (===, ---) headings outside code fences; plain text is one
// section. Empty sections (a heading directly followed by a subheading) are
// dropped, their titles live on in the heading paths below them.
func parseDocument(name, text string) parsedDoc {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	fallback := titleFromName(name)
	if !isMarkdown(name) {
		doc := parsedDoc{title: fallback}
		doc.sections = splitLong(section{title: fallback, path: fallback, content: strings.TrimSpace(text)})
		return doc
	}

	text, fmTitle := stripFrontMatter(text)
	type heading struct {
		level int
		title string
	}
	var (
		stack   []heading
		body    []string
		raw     []section // before the document title is known
		inFence string
	)
	flush := func() {
		content := strings.TrimSpace(strings.Join(body, "\n"))
		body = body[:0]
		if content == "" {
			return
		}
		var titles []string
		for _, h := range stack {
			titles = append(titles, h.title)
		}
		raw = append(raw, section{path: strings.Join(titles, headingSep), content: content})
		if len(titles) > 0 {
			raw[len(raw)-1].title = titles[len(titles)-1]
		}
	}
	open := func(level int, title string) {
		flush()
		for len(stack) > 0 && stack[len(stack)-1].level >= level {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, heading{level, title})
	}
	var firstH1, firstHeading string
	note := func(level int, title string) {
		if firstHeading == "" {
			firstHeading = title
		}
		if level == 1 && firstH1 == "" {
			firstH1 = title
		}
	}

	for _, line := range strings.Split(text, "\n") {
		if inFence != "" {
			body = append(body, line)
			if strings.HasPrefix(strings.TrimSpace(line), inFence) {
				inFence = ""
			}
			continue
		}
		if m := fenceOpen.FindStringSubmatch(line); m != nil {
			inFence = m[1]
			body = append(body, line)
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			title := cleanInline(m[2])
			if title == "" {
				continue
			}
			note(len(m[1]), title)
			open(len(m[1]), title)
			continue
		}
		// Setext: a one-line paragraph underlined with === or ---.
		if n := len(body); n > 0 && (setextH1.MatchString(line) || setextH2.MatchString(line)) &&
			strings.TrimSpace(body[n-1]) != "" && (n == 1 || strings.TrimSpace(body[n-2]) == "") {
			title := cleanInline(body[n-1])
			level := 2
			if setextH1.MatchString(line) {
				level = 1
			}
			body = body[:n-1]
			note(level, title)
			open(level, title)
			continue
		}
		body = append(body, line)
	}
	flush()

	doc := parsedDoc{title: firstNonEmpty(fmTitle, firstH1, firstHeading, fallback)}
	for _, s := range raw {
		if s.title == "" {
			s.title = doc.title
		}
		if s.path == "" {
			s.path = doc.title
		} else if !strings.HasPrefix(s.path, doc.title) {
			s.path = doc.title + headingSep + s.path
		}
		doc.sections = append(doc.sections, splitLong(s)...)
	}
	return doc
}

// stripFrontMatter removes a leading YAML front matter block and returns its
// title, if any.
func stripFrontMatter(text string) (rest, title string) {
	if !strings.HasPrefix(text, "---\n") {
		return text, ""
	}
	end := strings.Index(text[4:], "\n---")
	if end < 0 {
		return text, ""
	}
	fm := text[4 : 4+end]
	rest = text[4+end+4:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:]
	} else {
		rest = ""
	}
	if m := frontMatterKV.FindStringSubmatch(fm); m != nil {
		title = clipTitle(strings.TrimSpace(m[1]))
	}
	return rest, title
}

// cleanInline turns a heading's Markdown into plain text, at most
// maxTitleBytes long.
func cleanInline(s string) string {
	s = mdLink.ReplaceAllString(s, "$1")
	s = strings.NewReplacer("**", "", "__", "", "`", "").Replace(s)
	return clipTitle(strings.Join(strings.Fields(s), " "))
}

// clipTitle cuts s to at most maxTitleBytes, at a rune boundary.
func clipTitle(s string) string {
	if len(s) <= maxTitleBytes {
		return s
	}
	cut := maxTitleBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut])
}

// titleFromName makes "disk-full_runbook.md" into "disk full runbook".
func titleFromName(name string) string {
	base := path.Base(name)
	base = strings.TrimSuffix(base, path.Ext(base))
	t := strings.Join(strings.Fields(strings.NewReplacer("-", " ", "_", " ").Replace(base)), " ")
	if t == "" {
		return name
	}
	return t
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// splitLong splits a section longer than maxSectionChars at paragraph
// boundaries (or, for one huge paragraph, at whitespace) into parts titled
// "Title (part N)".
func splitLong(s section) []section {
	if len(s.content) <= maxSectionChars {
		if s.content == "" {
			return nil
		}
		return []section{s}
	}
	var parts []string
	rest := s.content
	for len(rest) > maxSectionChars {
		cut := strings.LastIndex(rest[:maxSectionChars], "\n\n")
		if cut < maxSectionChars/2 {
			cut = strings.LastIndexAny(rest[:maxSectionChars], " \n\t")
		}
		if cut < maxSectionChars/2 {
			cut = maxSectionChars
			for cut > 0 && !utf8.RuneStart(rest[cut]) {
				cut--
			}
		}
		parts = append(parts, strings.TrimSpace(rest[:cut]))
		rest = strings.TrimSpace(rest[cut:])
	}
	if rest != "" {
		parts = append(parts, rest)
	}
	out := make([]section, 0, len(parts))
	for i, p := range parts {
		t := s.title
		if i > 0 {
			t = s.title + " (part " + strconv.Itoa(i+1) + ")"
		}
		out = append(out, section{title: t, path: s.path, content: p})
	}
	return out
}
