package redact

import "sort"

// matcher is an Aho-Corasick automaton over bytes, finding every
// occurrence of a set of words in one pass. It is built for memory: each
// state keeps its goto edges as a sorted run in one shared slice, so the
// rule keywords and gitleaks' stop words (a couple of thousand words) take
// a few hundred kilobytes, where a double-array trie took 12 MB in every
// process. Read-only after newMatcher, so one serves concurrent walks.
type matcher struct {
	edges  []acEdge
	states []acState
	// rows are complete transition tables (goto with the fail links
	// followed) of the states at most denseDepth deep, where a walk over
	// ordinary text spends nearly all its steps.
	rows [][256]int32
}

// denseDepth bounds the states with rows: a few hundred of them for the
// rule keywords, a kilobyte each.
const denseDepth = 2

type acEdge struct {
	b  byte
	to int32
}

type acState struct {
	first, n int32 // edges[first : first+n], sorted by b
	fail     int32 // the longest proper suffix that is a state
	dict     int32 // the nearest state on the fail chain that ends a word; -1: none
	word     int32 // the word ending here; -1: none
	depth    int32
	row      int32 // its index in rows; -1: none
}

// newMatcher builds the automaton of words; a word's number is its index.
// Empty words are ignored; of duplicates, the first is reported.
func newMatcher(words []string) *matcher {
	// A trie with map children first, flattened below.
	type node struct {
		next  map[byte]int32
		word  int32
		depth int32
	}
	nodes := []node{{word: -1}}
	for i, w := range words {
		s := int32(0)
		for j := 0; j < len(w); j++ {
			nx, ok := nodes[s].next[w[j]]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, node{word: -1, depth: nodes[s].depth + 1})
				if nodes[s].next == nil {
					nodes[s].next = map[byte]int32{}
				}
				nodes[s].next[w[j]] = nx
			}
			s = nx
		}
		if s != 0 && nodes[s].word < 0 {
			nodes[s].word = int32(i)
		}
	}
	m := &matcher{states: make([]acState, len(nodes))}
	for i, nd := range nodes {
		bs := make([]int, 0, len(nd.next))
		for b := range nd.next {
			bs = append(bs, int(b))
		}
		sort.Ints(bs)
		st := &m.states[i]
		st.first, st.n, st.word, st.depth, st.dict, st.row = int32(len(m.edges)), int32(len(bs)), nd.word, nd.depth, -1, -1
		for _, b := range bs {
			m.edges = append(m.edges, acEdge{b: byte(b), to: nd.next[byte(b)]})
		}
	}
	// Fail and dictionary links, and the rows, breadth first: a state's
	// fail state is shallower, so its links and row come first.
	m.addRow(0)
	queue := []int32{}
	for _, e := range m.out(0) {
		m.states[e.to].fail = 0
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if m.states[s].depth <= denseDepth {
			m.addRow(s)
		}
		for _, e := range m.out(s) {
			f := m.states[s].fail
			for {
				if nx := m.next(f, e.b); nx >= 0 {
					m.states[e.to].fail = nx
					break
				}
				if f == 0 {
					m.states[e.to].fail = 0
					break
				}
				f = m.states[f].fail
			}
			if fs := m.states[e.to].fail; m.states[fs].word >= 0 {
				m.states[e.to].dict = fs
			} else {
				m.states[e.to].dict = m.states[fs].dict
			}
			queue = append(queue, e.to)
		}
	}
	return m
}

func (m *matcher) out(s int32) []acEdge {
	st := m.states[s]
	return m.edges[st.first : st.first+st.n]
}

// next is s's goto on b, -1 when it has none (the root's too).
func (m *matcher) next(s int32, b byte) int32 {
	st := &m.states[s]
	lo, end := int(st.first), int(st.first+st.n)
	for hi := end; hi-lo > 8; { // binary search down to a short run, then scan on
		mid := int(uint(lo+hi) >> 1)
		if m.edges[mid].b < b {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for ; lo < end; lo++ {
		if e := m.edges[lo]; e.b >= b {
			if e.b == b {
				return e.to
			}
			return -1
		}
	}
	return -1
}

// addRow gives s its complete transition table; s's fail state has one.
func (m *matcher) addRow(s int32) {
	var row [256]int32
	for b := range row {
		switch nx := m.next(s, byte(b)); {
		case nx >= 0:
			row[b] = nx
		case s != 0:
			row[b] = m.rows[m.states[m.states[s].fail].row][b]
		}
	}
	m.states[s].row = int32(len(m.rows))
	m.rows = append(m.rows, row)
}

// walk calls fn for every occurrence of a word in text, by end position
// (end is the index just past it), until fn returns false.
func (m *matcher) walk(text string, fn func(end, n, word int) bool) {
	s := int32(0)
	for i := 0; i < len(text); i++ {
		b := text[i]
		for {
			st := &m.states[s]
			if st.row >= 0 {
				s = m.rows[st.row][b]
				break
			}
			if nx := m.next(s, b); nx >= 0 {
				s = nx
				break
			}
			s = st.fail
		}
		for o := s; o > 0; { // s, then the states on its fail chain that end words
			st := m.states[o]
			if st.word >= 0 && !fn(i+1, int(st.depth), int(st.word)) {
				return
			}
			o = st.dict
		}
	}
}

// any reports whether text contains a word.
func (m *matcher) any(text string) bool {
	found := false
	m.walk(text, func(int, int, int) bool {
		found = true
		return false
	})
	return found
}
