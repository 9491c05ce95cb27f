package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType names a tensor element type as the safetensors header spells it.
// The zero value means F32 when writing.
type DType string

// The dtypes of the safetensors specification.
const (
	BOOL    DType = "BOOL"
	F4      DType = "F4" // 4 bits, two per byte
	F6E2M3  DType = "F6_E2M3"
	F6E3M2  DType = "F6_E3M2"
	U8      DType = "U8"
	I8      DType = "I8"
	F8E5M2  DType = "F8_E5M2"
	F8E4M3  DType = "F8_E4M3"
	F8E8M0  DType = "F8_E8M0"
	I16     DType = "I16"
	U16     DType = "U16"
	F16     DType = "F16"
	BF16    DType = "BF16"
	I32     DType = "I32"
	U32     DType = "U32"
	F32     DType = "F32"
	C64     DType = "C64"
	F64     DType = "F64"
	I64     DType = "I64"
	U64     DType = "U64"
	unknown DType = ""
)

// dtypeInfo holds each dtype's size in bits and its rank in the reference
// implementation's ordering (declaration order of its Dtype enum), which the
// writer uses to lay out tensors.
var dtypeInfo = map[DType]struct{ bits, rank int }{
	BOOL: {8, 0}, F4: {4, 1}, F6E2M3: {6, 2}, F6E3M2: {6, 3}, U8: {8, 4},
	I8: {8, 5}, F8E5M2: {8, 6}, F8E4M3: {8, 7}, F8E8M0: {8, 8}, I16: {16, 9},
	U16: {16, 10}, F16: {16, 11}, BF16: {16, 12}, I32: {32, 13}, U32: {32, 14},
	F32: {32, 15}, C64: {64, 16}, F64: {64, 17}, I64: {64, 18}, U64: {64, 19},
}

// Bits reports the size of one element in bits, or 0 for an unknown dtype.
func (d DType) Bits() int { return dtypeInfo[d].bits }

// Known reports whether d is a dtype of the specification.
func (d DType) Known() bool { _, ok := dtypeInfo[d]; return ok }

// Float reports whether tensors of this dtype convert to float32.
func (d DType) Float() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// byteSize returns the byte size of n elements of d, or an error when it
// overflows or does not fill whole bytes.
func (d DType) byteSize(n uint64) (uint64, error) {
	bits := uint64(d.Bits())
	if n > math.MaxUint64/bits {
		return 0, fmt.Errorf("%d elements of %s overflow", n, d)
	}
	if n*bits%8 != 0 {
		return 0, fmt.Errorf("%d elements of %s do not fill whole bytes", n, d)
	}
	return n * bits / 8, nil
}

// decode converts raw little-endian elements of dtype d into dst, which has
// room for exactly the number of elements in src.
func decode(dst []float32, src []byte, d DType) {
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		panic("safetensors: decode of " + string(d))
	}
}

// encode appends the little-endian encoding of src in dtype d to dst.
func encode(dst []byte, src []float32, d DType) []byte {
	switch d {
	case F32:
		for _, v := range src {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case F16:
		for _, v := range src {
			dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(v))
		}
	case BF16:
		for _, v := range src {
			dst = binary.LittleEndian.AppendUint16(dst, F32ToBF16(v))
		}
	case F64:
		for _, v := range src {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(v)))
		}
	default:
		panic("safetensors: encode to " + string(d))
	}
	return dst
}

// F16ToF32 converts IEEE 754 binary16 bits to float32, exactly: every half
// value, subnormals, infinities and NaN payloads included, is representable.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN, payload kept
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2⁻²⁴, normal in float32.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 converts a float32 to IEEE 754 binary16 bits, rounding to nearest
// even; values beyond the half range become ±Inf and NaN stays NaN (its
// payload truncated, kept non-zero).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		m := uint16(mant >> 13)
		if m == 0 {
			m = 0x200
		}
		return sign | 0x7c00 | m
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the full significand into place.
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to zero
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || rem == half && r&1 == 1 {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++ // may carry into the exponent, up to Inf: correct
	}
	return sign | uint16(r)
}

// BF16ToF32 converts bfloat16 bits to float32, exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts a float32 to bfloat16 bits, rounding to nearest even
// as PyTorch does; NaN stays a quiet NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
