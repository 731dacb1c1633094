package classify

import (
	"encoding/binary"
	"math/bits"
	"strings"
)

// literalSet finds which of a fixed set of literals occur in a line in one
// pass. Each literal (at least 4 bytes) is keyed by two three-byte windows,
// one at an even and one at an odd offset, each the rarest of its parity
// (punctuation and capitals are rarer in logs than words of lower-case
// letters). Because every occurrence of a literal puts one of its two keys at
// an even position of the line, the scan only hashes every other three-byte
// window and tests a bitmap; on a hit it compares the literals sharing that
// key. Lines with no literal, the vast majority, cost half a hash per byte,
// which is far cheaper than trying every rule's regexp.
type literalSet struct {
	lits []string
	bits [1 << hashBits / 64]uint64 // key hash present
	// rank[w] counts the set bits of bits[:w], so that a present hash's
	// rank among present hashes indexes first.
	rank  [1 << hashBits / 64]uint16
	first []uint16 // hash rank → its keys in refs[first[rank]:first[rank+1]]
	refs  []keyRef
}

// keyRef says that literal lits[lit] (text) has a key trigram at offset off.
type keyRef struct {
	text string
	lit  int
	off  int
}

const hashBits = 17

// trigramHash hashes three bytes packed little-endian, as scan loads them.
func trigramHash(a, b, c byte) uint32 {
	return (uint32(a) | uint32(b)<<8 | uint32(c)<<16) * 0x9E3779B1 >> (32 - hashBits)
}

func newLiteralSet(lits []string) *literalSet {
	s := &literalSet{}
	byHash := map[uint32][]keyRef{}
	for i, l := range lits {
		if len(l) < 4 {
			panic("classify: prefilter literal shorter than 4 bytes: " + l)
		}
		// The scan hashes the windows at even positions of the line, so an
		// occurrence of the literal puts either its even-offset windows or
		// its odd-offset ones under the scan: key it by the rarest of each.
		var keys [2]int
		var best [2]int
		best[0], best[1] = 1<<30, 1<<30
		for j := 0; j+3 <= len(l); j++ {
			if c := trigramCommonness(l[j], l[j+1], l[j+2]); c < best[j%2] {
				best[j%2], keys[j%2] = c, j
			}
		}
		s.lits = append(s.lits, l)
		for _, o := range keys {
			h := trigramHash(l[o], l[o+1], l[o+2])
			s.bits[h>>6] |= 1 << (h & 63)
			byHash[h] = append(byHash[h], keyRef{text: l, lit: i, off: o})
		}
	}
	n := 0
	for w, b := range s.bits {
		s.rank[w] = uint16(n)
		n += bits.OnesCount64(b)
	}
	s.first = make([]uint16, 0, n+1)
	for w, b := range s.bits {
		for b != 0 {
			h := uint32(w*64 + bits.TrailingZeros64(b))
			b &= b - 1
			s.first = append(s.first, uint16(len(s.refs)))
			s.refs = append(s.refs, byHash[h]...)
		}
	}
	s.first = append(s.first, uint16(len(s.refs)))
	return s
}

// commonBigrams are frequent in English and in CI logs; a literal keyed by
// one of them would be verified at almost every line.
var commonBigrams = map[string]bool{}

func init() {
	for _, b := range strings.Fields("th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro ic ne ea ra ce li ch ll be ma si om ur ge ld ck ul du mp un ok ss ac ad ag ai am ap ca ct di el em et ex fo ia id il im ir la lo mo na nc ni no ns ol os ot pa pe pl po pr ra rc rd rt sa sc sh so sp ta tr ts tu ui um up ur us ut va wa") {
		commonBigrams[b] = true
	}
}

// commonTrigrams are among the most frequent three-byte windows of English
// text, source code and CI output; a key equal to one of them would be hit on
// a large share of lines.
var commonTrigrams = map[string]bool{}

func init() {
	for _, t := range strings.Fields("the and ing ion ent tio for ter est tes ers ati hat ate all ver his res con com pro pre per int ith wit ted led red ned sed ild bui uil pil mak ake mod odu ode dul ule ack pac kag age loa oad dow own nlo ile fil lin ine ain ran run unn nni com omp mpi ati tin ati ess ass pas sta tat art ser erv rvi vic ice str tri rin not ove cov ver era rat rou oun und che eck ect ext tex let lea ase ler out put sho how low oll rea ead ade dat ata use sin ini ons ons ure tur lle ill ist iti tal ort ory tor rep epo pos sit ito req equ que ues jec obj tem ame nam lib ibr rar ary fro rom cal all wor ork ord cod des esc ign ove ces ect hed ach gen age rog ogr gre own wnl nlo oca cal ful ully ucc cce ces sfu ocu ume men ent for orm rma mat eso sol olv lve ved ild uil") {
		commonTrigrams[t] = true
	}
}

// trigramCommonness estimates how common a three-byte window is in CI logs.
// Windows made only of lower-case letters and spaces are word interiors,
// frequent whatever the words; capitals, digits and punctuation are rarer.
func trigramCommonness(a, b, c byte) int {
	n := bigramCommonness(a, b) + bigramCommonness(b, c) + byteCommonness(b)
	lower := func(x byte) bool { return x >= 'a' && x <= 'z' || x == ' ' }
	if lower(a) && lower(b) && lower(c) {
		// A word's interior, or its boundary with the next word.
		n += 25
		if a == ' ' || b == ' ' || c == ' ' {
			n += 15
		}
	}
	if commonTrigrams[strings.ToLower(string([]byte{a, b, c}))] {
		n += 40
	}
	return n
}

// bigramCommonness estimates how common a two-byte window is in CI logs.
func bigramCommonness(a, b byte) int {
	c := byteCommonness(a) + byteCommonness(b)
	if a == b && (a == ' ' || a == '-' || a == '=' || a == '.' || a == '#' || a == '*') {
		c += 20
	}
	if a == ' ' || b == ' ' {
		c += 12
	}
	if commonBigrams[strings.ToLower(string([]byte{a, b}))] {
		c += 15
	}
	return c
}

// byteCommonness estimates how common a byte is in CI logs.
func byteCommonness(c byte) int {
	switch {
	case c == ' ' || c == 'e' || c == 't' || c == 'a' || c == 'o' || c == 'i' || c == 'n' || c == 's' || c == 'r':
		return 10
	case c >= 'a' && c <= 'z':
		return 7
	case c >= '0' && c <= '9':
		return 6
	case c == '.' || c == '/' || c == '-' || c == '_' || c == ':' || c == '=':
		return 5
	case c >= 'A' && c <= 'Z':
		return 3
	case c >= 0x80:
		return 4
	default:
		return 2
	}
}

// scan appends to hits the index of every literal found in line (a literal
// found several times may appear several times).
func (s *literalSet) scan(line []byte, hits []int) []int {
	// Trigrams starting at even indexes 0, 2, 4, ...; three of them per
	// 8-byte load in the main loop.
	n := len(line)
	i := 0
	for ; i+8 <= n; i += 6 {
		w := binary.LittleEndian.Uint64(line[i:])
		h0 := uint32(w&0xffffff) * 0x9E3779B1 >> (32 - hashBits)
		h1 := uint32(w>>16&0xffffff) * 0x9E3779B1 >> (32 - hashBits)
		h2 := uint32(w>>32&0xffffff) * 0x9E3779B1 >> (32 - hashBits)
		if s.bits[h0>>6]&(1<<(h0&63)) != 0 {
			hits = s.verify(line, i, h0, hits)
		}
		if s.bits[h1>>6]&(1<<(h1&63)) != 0 {
			hits = s.verify(line, i+2, h1, hits)
		}
		if s.bits[h2>>6]&(1<<(h2&63)) != 0 {
			hits = s.verify(line, i+4, h2, hits)
		}
	}
	for ; i+3 <= n; i += 2 {
		k := uint32(line[i]) | uint32(line[i+1])<<8 | uint32(line[i+2])<<16
		h := k * 0x9E3779B1 >> (32 - hashBits)
		if s.bits[h>>6]&(1<<(h&63)) != 0 {
			hits = s.verify(line, i, h, hits)
		}
	}
	return hits
}

// verify compares the literals keyed by hash h (present in s.bits) with the
// trigram at pos.
func (s *literalSet) verify(line []byte, pos int, h uint32, hits []int) []int {
	r := int(s.rank[h>>6]) + bits.OnesCount64(s.bits[h>>6]&(1<<(h&63)-1))
	for _, ref := range s.refs[s.first[r]:s.first[r+1]] {
		start := pos - ref.off
		if start >= 0 && start+len(ref.text) <= len(line) && string(line[start:start+len(ref.text)]) == ref.text {
			hits = append(hits, ref.lit)
		}
	}
	return hits
}
