package classify

// literalSet finds which of a fixed set of literals occur in a line in one
// pass. Each literal is indexed by its first two bytes; scanning a line costs
// one table lookup per byte plus a comparison for each literal whose first
// two bytes occur, which is far cheaper than trying every rule's regexp.
type literalSet struct {
	lits  [][]byte
	table [1 << 16]uint16 // bigram → 1 + index into heads, 0 when no literal starts with it
	heads [][]int         // literal indexes sharing a bigram
	first [256]bool       // bytes that start some literal
}

func newLiteralSet(lits []string) *literalSet {
	s := &literalSet{}
	for i, l := range lits {
		if len(l) < 2 {
			panic("classify: prefilter literal shorter than 2 bytes: " + l)
		}
		s.lits = append(s.lits, []byte(l))
		k := uint16(l[0])<<8 | uint16(l[1])
		if s.table[k] == 0 {
			s.heads = append(s.heads, nil)
			s.table[k] = uint16(len(s.heads))
		}
		h := s.table[k] - 1
		s.heads[h] = append(s.heads[h], i)
		s.first[l[0]] = true
	}
	return s
}

// scan calls hit for every literal index found in line (possibly more than
// once for a literal occurring several times).
func (s *literalSet) scan(line []byte, hit func(int)) {
	n := len(line) - 1
	for i := 0; i < n; i++ {
		if !s.first[line[i]] {
			continue
		}
		h := s.table[uint16(line[i])<<8|uint16(line[i+1])]
		if h == 0 {
			continue
		}
		for _, li := range s.heads[h-1] {
			l := s.lits[li]
			if len(line)-i >= len(l) && string(line[i:i+len(l)]) == string(l) {
				hit(li)
			}
		}
	}
}
