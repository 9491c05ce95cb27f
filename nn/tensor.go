package nn

import "fmt"

// Tensor is a dense row-major float32 array. Grad is non-nil exactly when
// the tensor needs a gradient: it is a trainable parameter or lies on the
// path from one to the loss.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32
}

// New returns a zeroed tensor of the given shape that needs no gradient.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, numel(shape))}
}

// FromData wraps data (not copied) in a tensor of the given shape.
// It panics if the sizes disagree.
func FromData(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("nn: FromData: %d values for shape %v (%d)", len(data), shape, n))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Param returns a zeroed trainable leaf tensor: its Grad is allocated.
func Param(name string, shape ...int) *Tensor {
	t := New(shape...)
	t.Name = name
	t.Grad = make([]float32, len(t.Data))
	return t
}

// Size is the number of elements.
func (t *Tensor) Size() int { return len(t.Data) }

// Cols is the length of the last axis (1 for a scalar).
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// Rows is the number of rows when all axes but the last are flattened.
func (t *Tensor) Rows() int {
	c := t.Cols()
	if c == 0 {
		return 0
	}
	return len(t.Data) / c
}

// RequiresGrad reports whether t carries a gradient.
func (t *Tensor) RequiresGrad() bool { return t.Grad != nil }

// SetRequiresGrad allocates (on) or drops (off) t's gradient buffer.
func (t *Tensor) SetRequiresGrad(on bool) {
	switch {
	case on && t.Grad == nil:
		t.Grad = make([]float32, len(t.Data))
	case !on:
		t.Grad = nil
	}
}

// ZeroGrad clears t's gradient, if it has one.
func (t *Tensor) ZeroGrad() { clear(t.Grad) }

// Clone returns a deep copy of t's name, shape and data (and gradient).
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
	if t.Grad != nil {
		c.Grad = append([]float32(nil), t.Grad...)
	}
	return c
}

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%q, %v)", t.Name, t.Shape)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("nn: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
