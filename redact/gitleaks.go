package redact

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// gitleaks generates most of its provider rules ("semi-generic": an
// identifier such as "stripe", an assignment, a value) as
//
//	(?i)[\w.-]{0,50}?(?:IDENTIFIER)[ \t\w.-]{0,20}[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)VALUE(?:[\x60'"\s;]|\\[nr]|$)
//
// The lazy prefix only widens the reported match; the identifier starts at
// a keyword. The matcher drops the prefix and anchors the rest at each
// keyword hit, tried first through its head up to the assignment (cheap)
// before the whole expression (the generic rule's is 455 instructions).
const (
	identPrefixMax      = 50
	semiGenericOperator = `(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`
)

// anchoredWindow is where an anchored try of an expression that can end at
// the text's end (gitleaks' terminator has $) starts looking: it keeps the
// generic rule on Go's fast backtracking matcher (which it leaves above 576
// bytes), and a longer match touches the window's end and is retried wider.
const anchoredWindow = 512

// genericGitleaksRules are gitleaks' rules for shapes rather than
// providers (see rule.generic).
var genericGitleaksRules = map[string]bool{"generic-api-key": true, "curl-auth-header": true, "curl-auth-user": true}

// gitleaksRules loads gitleaks' embedded default configuration (the rules
// its own CLI uses) into the matcher's rules. It parses the TOML with a
// viper instance of its own, not gitleaks' NewDetectorDefaultConfig, which
// writes viper's process-wide state and builds a detector we do not use.
func gitleaksRules() ([]*rule, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return nil, fmt.Errorf("read gitleaks default config: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, fmt.Errorf("decode gitleaks default config: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, fmt.Errorf("translate gitleaks default config: %w", err)
	}
	// The global allowlists are built once and shared by every rule: built
	// per rule, their compiled branches were most of the rule set's 26 MB
	// of heap.
	global := make([]allowlist, 0, len(cfg.Allowlists))
	for _, a := range cfg.Allowlists {
		al, err := newAllowlist(a)
		if err != nil {
			return nil, fmt.Errorf("gitleaks global allowlist: %w", err)
		}
		global = append(global, al)
	}
	ids := append([]string(nil), cfg.OrderedRules...)
	sort.Strings(ids)
	var out []*rule
	for _, id := range ids {
		gr := cfg.Rules[id]
		if gr.Regex == nil {
			continue // a file-path rule: chat text has no path
		}
		rs, err := fromGitleaks(gr, global)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func fromGitleaks(gr config.Rule, global []allowlist) ([]*rule, error) {
	tree, err := syntax.Parse(gr.Regex.String(), syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("parse gitleaks rule %s: %w", gr.RuleID, err)
	}
	branches := []*syntax.Regexp{tree}
	if tree.Op == syntax.OpAlternate && gr.SecretGroup == 0 {
		// Each branch of a top-level alternation becomes a rule of its own
		// (atlassian-api-token: "jira token = ..." or a bare ATATT3 token),
		// so a semi-generic branch can be anchored and the other keeps a
		// small window. With secretGroup unset the secret is the first
		// non-empty group, which a branch on its own still finds.
		branches = tree.Sub
	}
	accept, err := gitleaksCheck(gr, global)
	if err != nil {
		return nil, err
	}
	var out []*rule
	for _, b := range branches {
		r := &rule{name: gr.RuleID, keywords: gr.Keywords, re: gr.Regex, group: -1,
			generic: genericGitleaksRules[gr.RuleID], accept: accept}
		if gr.SecretGroup > 0 {
			r.group = gr.SecretGroup
		}
		if len(branches) > 1 {
			if r.re, err = regexp.Compile(b.String()); err != nil {
				return nil, fmt.Errorf("split gitleaks rule %s: %w", gr.RuleID, err)
			}
		}
		if isSemiGeneric(b) {
			if err := anchor(r, b); err != nil {
				return nil, fmt.Errorf("anchor gitleaks rule %s: %w", gr.RuleID, err)
			}
		}
		out = append(out, newRule(r))
	}
	return out, nil
}

// isSemiGeneric reports whether re is a sequence starting with the lazy
// identifier prefix and holding the assignment.
func isSemiGeneric(re *syntax.Regexp) bool {
	if re.Op != syntax.OpConcat || len(re.Sub) < 3 {
		return false
	}
	p := re.Sub[0]
	return p.Op == syntax.OpRepeat && p.Min == 0 && p.Max == identPrefixMax && p.Flags&syntax.NonGreedy != 0 &&
		operatorAt(re) > 0
}

// operatorAt is the index in re.Sub of the assignment group, or -1.
func operatorAt(re *syntax.Regexp) int {
	op, err := syntax.Parse(semiGenericOperator, syntax.Perl)
	if err != nil {
		return -1
	}
	want := op.String()
	for i, s := range re.Sub {
		if s.String() == want {
			return i
		}
	}
	return -1
}

// anchor makes r try semi-generic branch b at keyword hits: b without its
// prefix, from the start of the window, and b's head as the gate.
func anchor(r *rule, b *syntax.Regexp) error {
	begin := &syntax.Regexp{Op: syntax.OpBeginText}
	body := &syntax.Regexp{Op: syntax.OpConcat, Sub: append([]*syntax.Regexp{begin}, b.Sub[1:]...)}
	head := &syntax.Regexp{Op: syntax.OpConcat, Sub: append([]*syntax.Regexp{begin}, b.Sub[1:operatorAt(b)+1]...)}
	re, err := regexp.Compile(body.String())
	if err != nil {
		return err
	}
	gate, err := regexp.Compile(head.String())
	if err != nil {
		return err
	}
	r.re, r.anchored, r.lookBehind = re, true, identPrefixMax
	r.gate, r.gateWidth = gate, maxWidth(head)
	if endsAtTextEnd(b.Sub[len(b.Sub)-1]) {
		r.firstWindow = anchoredWindow
	}
	return nil
}

// endsAtTextEnd reports whether re is, or offers as an alternative, $ (the
// end of the text).
func endsAtTextEnd(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEndText:
		return true
	case syntax.OpAlternate, syntax.OpCapture:
		for _, s := range re.Sub {
			if endsAtTextEnd(s) {
				return true
			}
		}
	}
	return false
}

// gitleaksCheck is gitleaks' veto on a candidate: the secret's entropy at
// or below the rule's threshold, or a global or rule allowlist that allows
// it.
func gitleaksCheck(gr config.Rule, global []allowlist) (func(sc *scan, m, s [2]int) bool, error) {
	allow := append([]allowlist(nil), global...)
	for _, a := range gr.Allowlists {
		al, err := newAllowlist(a)
		if err != nil {
			return nil, fmt.Errorf("gitleaks rule %s: %w", gr.RuleID, err)
		}
		allow = append(allow, al)
	}
	entropy := gr.Entropy
	return func(sc *scan, m, s [2]int) bool {
		secret := sc.text[s[0]:s[1]]
		if entropy != 0 && shannonEntropy(secret) <= entropy {
			return false
		}
		for _, a := range allow {
			if a.allows(sc, m, secret) {
				return false
			}
		}
		return true
	}, nil
}

// allowlist is a gitleaks allowlist whose regexes are split into the
// branches of their top-level alternations, each with a prefilter: literals
// (lower case) one of which any text it matches contains. The generic
// rule's allowlist is one expression of some 2,000 instructions, tens of
// microseconds a candidate; a candidate contains the literals of a few of
// its branches at most. A prefilter can only skip a branch, so its rare
// misses (Unicode case folds) redact more, never less.
type allowlist struct {
	regexTarget    string
	matchAnd       bool // gitleaks' MatchCondition AND: every check must hold
	pathsOrCommits bool // it has conditions on paths or commits
	regexes        []allowRegex
	// stop finds the stop words (lower case), as gitleaks'
	// ContainsStopWord does on the lower-cased secret; nil: none.
	stop *matcher
}

type allowRegex struct {
	re    *regexp.Regexp
	needs []string // nil: always run re
}

// newAllowlist keeps what chat text can be checked against, and nothing of
// gitleaks' own allowlist: its stop-word trie alone took 9 MB.
func newAllowlist(a *config.Allowlist) (allowlist, error) {
	al := allowlist{regexTarget: a.RegexTarget, matchAnd: a.MatchCondition == config.AllowlistMatchAnd,
		pathsOrCommits: len(a.Commits) > 0 || len(a.Paths) > 0}
	if len(a.StopWords) > 0 {
		words := make([]string, len(a.StopWords))
		for i, w := range a.StopWords {
			words[i] = strings.ToLower(w)
		}
		al.stop = newMatcher(words)
	}
	for _, re := range a.Regexes {
		tree, err := syntax.Parse(re.String(), syntax.Perl)
		if err != nil {
			return al, fmt.Errorf("parse allowlist regex: %w", err)
		}
		branches := []*syntax.Regexp{tree}
		if tree.Op == syntax.OpAlternate {
			branches = tree.Sub
		}
		for _, b := range branches {
			bre, err := regexp.Compile(b.String())
			if err != nil {
				return al, fmt.Errorf("split allowlist regex: %w", err)
			}
			al.regexes = append(al.regexes, allowRegex{re: bre, needs: literalsIn(b, true)})
		}
	}
	return al, nil
}

// regexAllowed is gitleaks' RegexAllowed (any regex matches target), run
// branch by branch behind the prefilters.
func (a allowlist) regexAllowed(target string) bool {
	low := ""
	for _, r := range a.regexes {
		if r.needs != nil {
			if low == "" {
				low = lowerASCII(target)
			}
			if !containsAny(low, r.needs) {
				continue
			}
		}
		if r.re.MatchString(target) {
			return true
		}
	}
	return false
}

// allows applies the allowlist the way gitleaks' detector does to a
// finding without a file path or commit: a condition on paths or commits
// never holds, so an AND allowlist that has one never allows.
func (a allowlist) allows(sc *scan, m [2]int, secret string) bool {
	target := secret
	switch a.regexTarget {
	case "match":
		target = sc.text[m[0]:m[1]]
	case "line":
		target = sc.text[sc.lineStart(m[0]):max(sc.lineEnd(max(m[1]-1, m[0])), m[1])]
		target = strings.TrimSuffix(target, "\n")
	}
	stopOK := a.stop != nil && a.stop.any(strings.ToLower(secret))
	if !a.matchAnd {
		// Stop words first: they are cheap, the regexes are not.
		return stopOK || a.regexAllowed(target)
	}
	if a.pathsOrCommits {
		return false
	}
	checks := 0
	if len(a.regexes) > 0 {
		if !a.regexAllowed(target) {
			return false
		}
		checks++
	}
	if a.stop != nil {
		if !stopOK {
			return false
		}
		checks++
	}
	return checks > 0
}

// shannonEntropy is gitleaks' measure of how random a secret looks: bits
// per character over the characters it uses.
func shannonEntropy(s string) float64 {
	if s == "" {
		return 0
	}
	counts := map[rune]int{}
	for _, c := range s {
		counts[c]++
	}
	e := 0.0
	inv := 1 / float64(len(s))
	for _, n := range counts {
		f := float64(n) * inv
		e -= f * math.Log2(f)
	}
	return e
}
