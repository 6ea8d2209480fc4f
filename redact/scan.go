package redact

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// How the matcher stays fast on a 16 KiB message: a rule's regular
// expression never runs over the whole text. One Aho-Corasick pass finds
// every rule keyword (gitleaks' own prefilter idea); a rule then runs only
// in windows around its keywords' hits, as wide as its longest possible
// match (from the expression's syntax tree) and, when no match can cross a
// line, no wider than the hit's line. A match that touches a window edge
// the text does not end at is retried in a wider window, so a window never
// cuts a secret short. gitleaks' "semi-generic" rules (an identifier such
// as "password" or "stripe", an assignment, a value) are tried anchored at
// each keyword hit, which is where their identifier starts.

// unboundedWidth is what an unbounded repetition (x*, x{11,}) counts for
// when sizing windows; longer matches are found by the edge retry.
const unboundedWidth = 256

// rule is one detector: a regular expression (or a scan function) woken
// by keywords, the submatch that holds the secret, and a check that can
// veto a candidate (entropy, allowlists).
type rule struct {
	name string
	// generic rules know a shape (a label, a flag, a header) rather than a
	// provider; where spans overlap, a provider's rule names the marker.
	generic  bool
	keywords []string // lower case; none: the rule looks at every text
	re       *regexp.Regexp
	// group is the submatch holding the secret: 0 the whole match, -1 the
	// first non-empty submatch (gitleaks' rule when secretGroup is unset).
	group int
	// unquote keeps quotes around a quoted secret outside the marker.
	unquote bool
	// anchored: re starts with \A and is tried at each keyword hit;
	// lookBehind is how far back over [\w.-] the full match would have
	// started (gitleaks' identifier prefix), for allowlists on the match.
	anchored   bool
	lookBehind int
	// firstWindow, when set, is the window an anchored try starts with
	// (then widened while a match touches its end); otherwise width.
	firstWindow int
	// gate, when set, is an anchored prefix every match of an anchored
	// re starts with, no longer than gateWidth: cheap to try first.
	gate      *regexp.Regexp
	gateWidth int
	// width bounds the bytes a match spans; multiline says one may contain
	// a newline. Both come from re's syntax tree.
	width     int
	multiline bool
	// toEnd: a window runs from the hit's line to the end of the text (a
	// private key block can be kilobytes long).
	toEnd bool
	// labelled rules match a key name holding a keyword, then an optional
	// quote, blanks and ":" or "=": a hit not followed by that shape (the
	// prose "password rotation", "the secret store") opens no window.
	labelled bool
	// needs are literals (lower case) one of which every match contains,
	// from re's syntax tree; a window with none of them is skipped.
	needs []string
	// scan, when set, replaces re: it returns [start, end) secret spans.
	scan func(sc *scan) [][2]int
	// accept, when set, vetoes candidates: match and secret are [start, end).
	accept func(sc *scan, match, secret [2]int) bool
}

// newRule fills in the window geometry from re.
func newRule(r *rule) *rule {
	if r.re != nil {
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil { // re compiled, so its source parses
			panic("redact: reparse " + r.name + ": " + err.Error())
		}
		r.width = maxWidth(tree)
		r.multiline = crossesLine(tree)
		r.needs = requiredLiterals(tree)
	}
	return r
}

// scan is one text being redacted, with its ASCII-lower-cased copy (same
// byte offsets, unlike strings.ToLower on some non-ASCII letters).
type scan struct {
	text, lower string
}

func newScan(s string) *scan {
	return &scan{text: s, lower: lowerASCII(s)}
}

func lowerASCII(s string) string {
	i := 0
	for i < len(s) && (s[i] < 'A' || s[i] > 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lineStart is the offset of the first byte of the line holding i.
func (sc *scan) lineStart(i int) int { return strings.LastIndexByte(sc.text[:i], '\n') + 1 }

// lineEnd is the offset just past the newline ending the line holding i
// (or the text's end).
func (sc *scan) lineEnd(i int) int {
	if j := strings.IndexByte(sc.text[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(sc.text)
}

// hit is one keyword occurrence.
type hit struct {
	pos, len int
	word     int
}

// keywordIndex finds all keywords in one pass. Its automaton is read-only
// after it is built, so one index serves concurrent scans.
type keywordIndex struct {
	m *matcher
}

func newKeywordIndex(words []string) *keywordIndex {
	return &keywordIndex{m: newMatcher(words)}
}

func (k *keywordIndex) find(lower string) []hit {
	var out []hit
	k.m.walk(lower, func(end, n, word int) bool {
		out = append(out, hit{pos: end - n, len: n, word: word})
		return true
	})
	return out
}

// find appends the spans rule number idx finds near hits (anywhere when
// the rule has no keywords).
func (r *rule) find(sc *scan, hits []hit, idx int, spans []span) []span {
	if r.scan != nil {
		for _, sp := range r.scan(sc) {
			spans = append(spans, span{start: sp[0], end: sp[1], rule: idx, generic: r.generic})
		}
		return spans
	}
	if r.anchored {
		last := -1
		for _, h := range hits {
			if h.pos == last {
				continue
			}
			last = h.pos
			spans = r.tryAt(sc, h.pos, idx, spans)
		}
		return spans
	}
	n := len(sc.text)
	if len(hits) == 0 {
		return r.matchIn(sc, 0, n, idx, spans)
	}
	a, b := -1, -1
	for _, h := range hits {
		if r.labelled && !labelFollows(sc.text, h.pos+h.len) {
			continue
		}
		if r.toEnd && a >= 0 {
			break // the window already runs to the end
		}
		wa, wb := max(h.pos-r.width, 0), min(h.pos+h.len+r.width, n)
		switch {
		case r.toEnd:
			wa, wb = sc.lineStart(h.pos), n
		case !r.multiline:
			// Look for the line's ends only inside the window: a text
			// that is one long line must not cost a scan per hit.
			wa = wa + strings.LastIndexByte(sc.text[wa:h.pos], '\n') + 1
			if j := strings.IndexByte(sc.text[h.pos:wb], '\n'); j >= 0 {
				wb = h.pos + j + 1
			}
		}
		if a >= 0 && wa <= b {
			b = max(b, wb)
			continue
		}
		if a >= 0 {
			spans = r.matchIn(sc, a, b, idx, spans)
		}
		a, b = wa, wb
	}
	if a < 0 {
		return spans
	}
	return r.matchIn(sc, a, b, idx, spans)
}

// labelFollows reports whether text at i continues a key name and then
// assigns to it: [A-Za-z_-]*, an optional quote, blanks, ":" or "=".
func labelFollows(text string, i int) bool {
	for i < len(text) && (isLetter(rune(text[i])) || text[i] == '_' || text[i] == '-') {
		i++
	}
	if i < len(text) && (text[i] == '"' || text[i] == '\'') {
		i++
	}
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	return i < len(text) && (text[i] == ':' || text[i] == '=')
}

// matchIn runs the rule over text[a:b], widening the window while a match
// touches an edge the text itself does not have there.
func (r *rule) matchIn(sc *scan, a, b, idx int, spans []span) []span {
	n := len(sc.text)
	if !containsAny(sc.lower[a:b], r.needs) {
		return spans
	}
	for {
		locs := r.re.FindAllStringSubmatchIndex(sc.text[a:b], -1)
		if len(locs) == 0 {
			return spans
		}
		cut := false
		for _, loc := range locs {
			if (loc[0] == 0 && a > 0 && sc.text[a-1] != '\n') || (loc[1] == b-a && b < n) {
				cut = true
				break
			}
		}
		if cut {
			grow := max(b-a, unboundedWidth)
			a, b = max(0, a-grow), min(n, b+grow)
			continue
		}
		for _, loc := range locs {
			spans = r.candidate(sc, a, loc, a+loc[0], idx, spans)
		}
		return spans
	}
}

// tryAt runs an anchored rule at offset at.
func (r *rule) tryAt(sc *scan, at, idx int, spans []span) []span {
	n := len(sc.text)
	if r.gate != nil && !r.gate.MatchString(sc.text[at:min(n, at+r.gateWidth)]) {
		return spans
	}
	end := at + r.width
	if r.firstWindow > 0 {
		end = at + min(r.width, r.firstWindow)
	}
	end = min(n, end)
	for {
		loc := r.re.FindStringSubmatchIndex(sc.text[at:end])
		if loc == nil {
			return spans
		}
		if loc[1] == end-at && end < n {
			end = min(n, at+2*(end-at))
			continue
		}
		start := at
		for start > 0 && at-start < r.lookBehind && isIdentByte(sc.text[start-1]) {
			start--
		}
		return r.candidate(sc, at, loc, start, idx, spans)
	}
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// candidate turns one match (loc, relative to off; the full match starts
// at matchStart) into a span unless the rule's check vetoes it.
func (r *rule) candidate(sc *scan, off int, loc []int, matchStart, idx int, spans []span) []span {
	m := [2]int{matchStart, off + loc[1]}
	s0, s1 := loc[0], loc[1]
	switch {
	case r.group > 0:
		s0, s1 = loc[2*r.group], loc[2*r.group+1]
	case r.group < 0:
		for g := 1; 2*g < len(loc); g++ {
			if loc[2*g] >= 0 && loc[2*g+1] > loc[2*g] {
				s0, s1 = loc[2*g], loc[2*g+1]
				break
			}
		}
	}
	if s0 < 0 {
		return spans
	}
	s := [2]int{off + s0, off + s1}
	for s[1] > s[0] && sc.text[s[1]-1] == '\n' {
		s[1]--
	}
	for s[1] > s[0] && sc.text[s[0]] == '\n' {
		s[0]++
	}
	if r.unquote && s[1]-s[0] >= 1 {
		if q := sc.text[s[0]]; q == '"' || q == '\'' {
			s[0]++
			if s[1] > s[0] && sc.text[s[1]-1] == q {
				s[1]--
			}
		}
	}
	if s[1] <= s[0] {
		return spans
	}
	if r.generic && covered(spans, s, idx) {
		// A span that an outranking rule found already covers this one,
		// so it cannot change the output: skip the (costly) checks.
		return spans
	}
	if r.accept != nil && !r.accept(sc, m, s) {
		return spans
	}
	return append(spans, span{start: s[0], end: s[1], rule: idx, generic: r.generic})
}

// covered reports whether a span of a rule that outranks generic rule idx
// covers s.
func covered(spans []span, s [2]int, idx int) bool {
	for _, sp := range spans {
		if sp.start <= s[0] && s[1] <= sp.end && (!sp.generic || sp.rule < idx) {
			return true
		}
	}
	return false
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

// minLiteral is the shortest literal worth a prefilter.
const minLiteral = 3

// requiredLiterals returns lower-case literals one of which every match of
// re contains, or nil when it finds no such set.
func requiredLiterals(re *syntax.Regexp) []string { return literalsIn(re, false) }

// literalsIn is requiredLiterals. Case-folded literals with k or s also
// match the Kelvin sign and the long s, which lower-casing ASCII does not
// produce: they count only when foldKS says a miss is harmless (a
// prefilter for an allowlist, which can only let more be redacted), and
// then literals of any length count.
func literalsIn(re *syntax.Regexp, foldKS bool) []string {
	switch re.Op {
	case syntax.OpLiteral:
		lit := string(re.Rune)
		low := strings.ToLower(lit)
		if (len(lit) < minLiteral && !foldKS) || !isASCII(lit) {
			return nil
		}
		// The text is searched lower-cased, so a case-sensitive literal is
		// required in its lower-case form too.
		if re.Flags&syntax.FoldCase != 0 && !foldKS && strings.ContainsAny(low, "ks") {
			return nil
		}
		return []string{low}
	case syntax.OpCapture, syntax.OpPlus:
		return literalsIn(re.Sub[0], foldKS)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return literalsIn(re.Sub[0], foldKS)
		}
	case syntax.OpConcat:
		var best []string
		for _, s := range re.Sub {
			if l := literalsIn(s, foldKS); l != nil && (best == nil || shortest(l) > shortest(best)) {
				best = l
			}
		}
		return best
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			l := literalsIn(s, foldKS)
			if l == nil {
				return nil
			}
			all = append(all, l...)
		}
		return all
	}
	return nil
}

func shortest(l []string) int {
	n := len(l[0])
	for _, s := range l[1:] {
		n = min(n, len(s))
	}
	return n
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// maxWidth bounds the bytes a match of re spans, counting unbounded
// repetitions as unboundedWidth.
func maxWidth(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return utf8.UTFMax * len(re.Rune)
		}
		n := 0
		for _, c := range re.Rune {
			n += utf8.RuneLen(c)
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		return max(utf8.RuneLen(re.Rune[len(re.Rune)-1]), 1)
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return maxWidth(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return unboundedWidth
	case syntax.OpRepeat:
		if re.Max < 0 {
			return re.Min*maxWidth(re.Sub[0]) + unboundedWidth
		}
		return re.Max * maxWidth(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			n += maxWidth(s)
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, s := range re.Sub {
			n = max(n, maxWidth(s))
		}
		return n
	}
	return 0 // empty-width assertions
}

// crossesLine reports whether a match of re can run on past a newline:
// one that can contain a newline only in a short last element (gitleaks'
// terminator, (?:[\x60'"\s;]|\\[nr]|$)) ends at that newline, which a
// line window includes.
func crossesLine(re *syntax.Regexp) bool {
	if re.Op == syntax.OpCapture {
		return crossesLine(re.Sub[0])
	}
	if re.Op != syntax.OpConcat || len(re.Sub) == 0 {
		return matchesNewline(re)
	}
	last := re.Sub[len(re.Sub)-1]
	for _, s := range re.Sub[:len(re.Sub)-1] {
		if matchesNewline(s) {
			return true
		}
	}
	return matchesNewline(last) && maxWidth(last) > 2
}

// matchesNewline reports whether a match of re can contain a newline.
func matchesNewline(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar:
		return true
	case syntax.OpLiteral:
		for _, c := range re.Rune {
			if c == '\n' {
				return true
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
				return true
			}
		}
	}
	for _, s := range re.Sub {
		if matchesNewline(s) {
			return true
		}
	}
	return false
}
