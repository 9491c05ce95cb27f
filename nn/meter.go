package nn

import (
	"cmp"
	"reflect"
	"slices"
	"sync/atomic"
	"unsafe"
)

// Meter counts the bytes of tensor memory held on behalf of one owner (a
// trial) and their high-water mark, as torch.cuda.memory_allocated and
// max_memory_allocated do for a device: whoever allocates or frees a
// buffer for the owner says so with Add. A Graph with a Meter charges its
// arena's growth; an optimiser with one charges its state. A nil *Meter
// counts nothing. Its methods are safe for concurrent use.
type Meter struct {
	cur, peak atomic.Int64
}

// Add charges n bytes (n < 0 frees them) and raises the peak if the
// current count passes it.
func (m *Meter) Add(n int64) {
	if m == nil || n == 0 {
		return
	}
	c := m.cur.Add(n)
	for {
		p := m.peak.Load()
		if c <= p || m.peak.CompareAndSwap(p, c) {
			return
		}
	}
}

// Current is the number of bytes charged and not freed.
func (m *Meter) Current() int64 {
	if m == nil {
		return 0
	}
	return m.cur.Load()
}

// Peak is the highest Current since the Meter was made.
func (m *Meter) Peak() int64 {
	if m == nil {
		return 0
	}
	return m.peak.Load()
}

// grow accounts for an arena or scratch buffer of the graph that grows
// from old to new bytes of capacity.
func (g *Graph) grow(old, new int) {
	d := int64(new - old)
	g.held += d
	g.Meter.Add(d)
}

// HeldBytes is the capacity of the graph's arena and scratch buffers in
// bytes: what it keeps across Reset for the next pass (activations, their
// gradients, op scratch). It only grows.
func (g *Graph) HeldBytes() int64 { return g.held }

// Release frees the graph's arena and scratch buffers and uncharges them
// from its Meter; the graph stays usable and allocates afresh.
func (g *Graph) Release() {
	g.Reset()
	g.Meter.Add(-g.held)
	g.held = 0
	g.bufs, g.ints, g.scratch, g.scratchF = nil, nil, nil, nil
	g.tens = nil
}

// StateSizer is implemented by optimisers that hold state per parameter
// (AdamW's moments, SGD's momentum buffers).
type StateSizer interface {
	// StateBytes is the size in bytes of the state held now.
	StateBytes() int64
}

// StateBytes is the size of AdamW's two moments, m and v: 2·4 bytes per
// element of every parameter stepped so far.
func (o *AdamW) StateBytes() int64 {
	var n int64
	for _, s := range o.state {
		n += 4 * int64(len(s.m)+len(s.v))
	}
	return n
}

// StateBytes is the size of SGD's momentum buffers: 4 bytes per element
// of every parameter stepped so far with momentum, none without.
func (o *SGD) StateBytes() int64 {
	var n int64
	for _, b := range o.buf {
		n += 4 * int64(len(b))
	}
	return n
}

// ReachableBytes is the size in bytes of the distinct float32, float64 and
// integer buffers reachable from roots through pointers, struct fields,
// slices, arrays, maps and interfaces (a Tensor's Data and Grad but not its
// Shape, an adapter's frozen buffers, a batch's token ids, a model's
// caches), each backing array counted once at its capacity. Functions,
// channels and unsafe pointers are not followed. A model's ReachableBytes
// is the memory its tensors hold.
func ReachableBytes(roots ...any) int64 {
	w := walker{seen: map[seenKey]bool{}}
	for _, r := range roots {
		w.walk(reflect.ValueOf(r))
	}
	// Count the union of the backing arrays' byte ranges, so slices that
	// share an array (views, sub-slices) count it once.
	slices.SortFunc(w.spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var n int64
	var end uintptr
	for _, s := range w.spans {
		lo := max(s.lo, end)
		if s.hi > lo {
			n += int64(s.hi - lo)
		}
		end = max(end, s.hi)
	}
	return n
}

type seenKey struct {
	p uintptr
	t reflect.Type
}

type span struct{ lo, hi uintptr }

type walker struct {
	seen  map[seenKey]bool // pointers and maps already walked, by address and type
	spans []span           // numeric backing arrays: [first element, end of capacity)
}

var tensorType = reflect.TypeFor[Tensor]()

const intSize = int(unsafe.Sizeof(int(0)))

var numericSize = map[reflect.Kind]uintptr{
	reflect.Float32: 4, reflect.Float64: 8, reflect.Int: uintptr(intSize),
	reflect.Int32: 4, reflect.Int64: 8, reflect.Uint8: 1, reflect.Uint16: 2, reflect.Uint32: 4, reflect.Uint64: 8,
}

func (w *walker) once(v reflect.Value) bool {
	k := seenKey{v.Pointer(), v.Type()}
	if w.seen[k] {
		return false
	}
	w.seen[k] = true
	return true
}

func (w *walker) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && w.once(v) {
			w.walk(v.Elem())
		}
	case reflect.Interface:
		if !v.IsNil() {
			w.walk(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == tensorType { // its data, not its shape
			w.walk(v.FieldByName("Data"))
			w.walk(v.FieldByName("Grad"))
			return
		}
		for i := range v.NumField() {
			w.walk(v.Field(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			w.walk(v.Index(i))
		}
	case reflect.Slice:
		if v.IsNil() || v.Cap() == 0 {
			return
		}
		if size, ok := numericSize[v.Type().Elem().Kind()]; ok {
			p := v.Pointer()
			w.spans = append(w.spans, span{p, p + size*uintptr(v.Cap())})
			return
		}
		for i := range v.Len() {
			w.walk(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() || !w.once(v) {
			return
		}
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Key())
			w.walk(it.Value())
		}
	}
}
