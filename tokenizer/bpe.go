package tokenizer

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// bpeModel is the library's BPE model: a word starts as one symbol per
// character (its vocabulary entry, else its bytes as <0xHH> tokens with
// byte_fallback, else the unknown token, fused with a neighbouring unknown
// with fuse_unk), then the adjacent pair of lowest merge rank is merged,
// leftmost first among equal ranks, until no pair has a merge.
type bpeModel struct {
	vocab        map[string]int32
	merges       map[uint64]uint64 // pair (a<<32|b) → rank<<32 | merged id
	unk          int32             // -1: none
	fuseUnk      bool
	byteFallback bool
	byteIDs      [256]int32 // <0xHH> ids when byteFallback
	prefix       string     // continuing_subword_prefix
	suffix       string     // end_of_word_suffix
	ignoreMerges bool       // a word in the vocabulary is one token

	mu    sync.RWMutex
	cache map[string][]int32
}

// cacheWords bounds the per-word cache; it is emptied when full. Words of
// cacheMaxLen bytes or more are not cached (the library's bound).
const (
	cacheWords  = 1 << 17
	cacheMaxLen = 256
)

// tokenize appends the ids of one pre-tokenized word.
func (m *bpeModel) tokenize(ids []int, w string) ([]int, error) {
	if w == "" {
		return ids, nil
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[w]; ok {
			return append(ids, int(id)), nil
		}
	}
	if len(w) < cacheMaxLen {
		m.mu.RLock()
		c, ok := m.cache[w]
		m.mu.RUnlock()
		if ok {
			for _, id := range c {
				ids = append(ids, int(id))
			}
			return ids, nil
		}
	}
	word, err := m.mergeWord(w)
	if err != nil {
		return nil, err
	}
	if len(w) < cacheMaxLen {
		m.mu.Lock()
		if len(m.cache) >= cacheWords {
			clear(m.cache)
		}
		m.cache[w] = word
		m.mu.Unlock()
	}
	for _, id := range word {
		ids = append(ids, int(id))
	}
	return ids, nil
}

// symbol is one symbol of a word being merged, in a linked list.
type symbol struct {
	id         int32
	prev, next int32
	gone       bool
}

// mergeItem is a candidate merge of the symbol at pos with its next one.
type mergeItem struct {
	rank, pos, newID int32
}

// less orders candidates by rank, then position: the library's heap order.
func (a mergeItem) less(b mergeItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// mergeWord runs BPE on one word and returns its ids.
func (m *bpeModel) mergeWord(w string) ([]int32, error) {
	syms := make([]symbol, 0, len(w))
	add := func(id int32) {
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	unkPending := false
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		s := w[i : i+n]
		if i > 0 && m.prefix != "" {
			s = m.prefix + s
		}
		if i+n == len(w) && m.suffix != "" {
			s = s + m.suffix
		}
		i += n
		if id, ok := m.vocab[s]; ok {
			if unkPending {
				add(m.unk)
				unkPending = false
			}
			add(id)
			continue
		}
		if m.byteFallback {
			ok := true
			for j := 0; j < len(s); j++ {
				if m.byteIDs[s[j]] < 0 {
					ok = false
					break
				}
			}
			if ok {
				for j := 0; j < len(s); j++ {
					add(m.byteIDs[s[j]])
				}
				continue
			}
		}
		if m.unk >= 0 {
			if unkPending && !m.fuseUnk {
				add(m.unk)
			}
			unkPending = true
		}
		// Without an unknown token the library drops the character.
	}
	if unkPending {
		add(m.unk)
	}
	if len(syms) == 0 {
		return nil, nil
	}
	syms[len(syms)-1].next = -1

	// A binary min-heap of candidate merges; stale ones are skipped.
	var heap []mergeItem
	push := func(it mergeItem) {
		heap = append(heap, it)
		for i := len(heap) - 1; i > 0; {
			p := (i - 1) / 2
			if !heap[i].less(heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() mergeItem {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		for i := 0; ; {
			l, r, s := 2*i+1, 2*i+2, i
			if l < last && heap[l].less(heap[s]) {
				s = l
			}
			if r < last && heap[r].less(heap[s]) {
				s = r
			}
			if s == i {
				break
			}
			heap[i], heap[s] = heap[s], heap[i]
			i = s
		}
		return top
	}
	lookup := func(a, b int32) (rank, newID int32, ok bool) {
		v, ok := m.merges[uint64(uint32(a))<<32|uint64(uint32(b))]
		return int32(v >> 32), int32(uint32(v)), ok
	}
	for i := 0; i+1 < len(syms); i++ {
		if r, id, ok := lookup(syms[i].id, syms[i+1].id); ok {
			push(mergeItem{r, int32(i), id})
		}
	}
	for len(heap) > 0 {
		top := pop()
		cur := &syms[top.pos]
		if cur.gone || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		if _, id, ok := lookup(cur.id, right.id); !ok || id != top.newID {
			continue
		}
		cur.id = top.newID
		syms[cur.next].gone = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if r, id, ok := lookup(syms[cur.prev].id, cur.id); ok {
				push(mergeItem{r, cur.prev, id})
			}
		}
		if cur.next >= 0 {
			if r, id, ok := lookup(cur.id, syms[cur.next].id); ok {
				push(mergeItem{r, top.pos, id})
			}
		}
	}
	out := make([]int32, 0, len(syms))
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out, nil
}

// byteToken is the byte-fallback token of b, e.g. <0x0A>.
func byteToken(b byte) string { return fmt.Sprintf("<0x%02X>", b) }
