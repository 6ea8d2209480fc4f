package redact

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"regexp/syntax"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
)

// semiGenericPrefix starts gitleaks' generated "identifier = value" rules:
// up to 50 identifier bytes before the keyword, taken lazily. The matcher
// drops it and anchors the rest at each keyword hit instead of letting the
// expression scan for it.
const semiGenericPrefix = `(?i)[\w.-]{0,50}?`

// semiGenericOperator is the assignment in those rules ("=", ":", "=>",
// "||", ...).
const semiGenericOperator = `(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`

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
	ids := append([]string(nil), cfg.OrderedRules...)
	sort.Strings(ids)
	var out []*rule
	for _, id := range ids {
		gr := cfg.Rules[id]
		if gr.Regex == nil {
			continue // a file-path rule: chat text has no path
		}
		r, err := fromGitleaks(gr, cfg.Allowlists)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// isSemiGeneric reports whether src is one of gitleaks' generated
// "identifier = value" expressions: the lazy identifier prefix, then the
// rest, as one sequence (not an alternation whose other branches would not
// start at a keyword, like atlassian-api-token's).
func isSemiGeneric(src string) bool {
	if !strings.HasPrefix(src, semiGenericPrefix) {
		return false
	}
	tree, err := syntax.Parse(src, syntax.Perl)
	return err == nil && tree.Op == syntax.OpConcat
}

func fromGitleaks(gr config.Rule, global []*config.Allowlist) (*rule, error) {
	r := &rule{name: gr.RuleID, keywords: gr.Keywords, re: gr.Regex, group: -1, generic: genericGitleaksRules[gr.RuleID]}
	if gr.SecretGroup > 0 {
		r.group = gr.SecretGroup
	}
	if src := gr.Regex.String(); isSemiGeneric(src) {
		re, err := regexp.Compile(`(?i)\A` + strings.TrimPrefix(src, semiGenericPrefix))
		if err != nil {
			return nil, fmt.Errorf("anchor gitleaks rule %s: %w", gr.RuleID, err)
		}
		r.re, r.anchored, r.lookBehind = re, true, 50
		// Every such rule has the generator's assignment group: its head
		// (identifier, spacing, assignment) gates the whole expression,
		// which is large (the generic rule's is over 400 instructions).
		if i := strings.Index(re.String(), semiGenericOperator); i > 0 {
			gate, err := regexp.Compile(re.String()[:i] + semiGenericOperator)
			if err != nil {
				return nil, fmt.Errorf("split gitleaks rule %s: %w", gr.RuleID, err)
			}
			tree, err := syntax.Parse(gate.String(), syntax.Perl)
			if err != nil {
				return nil, fmt.Errorf("split gitleaks rule %s: %w", gr.RuleID, err)
			}
			r.gate, r.gateWidth = gate, maxWidth(tree)
		}
	}
	allow := append(append([]*config.Allowlist(nil), global...), gr.Allowlists...)
	entropy := gr.Entropy
	r.accept = func(sc *scan, m, s [2]int) bool {
		secret := sc.text[s[0]:s[1]]
		if entropy != 0 && shannonEntropy(secret) <= entropy {
			return false
		}
		for _, a := range allow {
			if allowed(a, sc, m, secret) {
				return false
			}
		}
		return true
	}
	return newRule(r), nil
}

// allowed applies one gitleaks allowlist the way its detector does to a
// finding without a file path or commit: a condition on paths or commits
// never holds, so an AND allowlist that has one never allows.
func allowed(a *config.Allowlist, sc *scan, m [2]int, secret string) bool {
	target := secret
	switch a.RegexTarget {
	case "match":
		target = sc.text[m[0]:m[1]]
	case "line":
		target = sc.text[sc.lineStart(m[0]):max(sc.lineEnd(max(m[1]-1, m[0])), m[1])]
		target = strings.TrimSuffix(target, "\n")
	}
	stopOK, _ := a.ContainsStopWord(secret)
	if a.MatchCondition != config.AllowlistMatchAnd {
		// Stop words first: they are cheap, the regexes are not.
		return stopOK || a.RegexAllowed(target)
	}
	regexOK := a.RegexAllowed(target)
	if len(a.Commits) > 0 || len(a.Paths) > 0 {
		return false
	}
	checks := 0
	if len(a.Regexes) > 0 {
		if !regexOK {
			return false
		}
		checks++
	}
	if len(a.StopWords) > 0 {
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
