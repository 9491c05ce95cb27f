//go:build ignore

// gen_asm writes sgemm_amd64.s, the SGEMM micro-kernels (a 6×16 AVX2+FMA
// kernel, 12×32 and 16×16 AVX-512 kernels), and vecops_amd64.s, simple
// AVX2 element-wise loops. Run with go generate.
package main

import (
	"bytes"
	"fmt"
	"os"
)

var out bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&out, "\t"+format+"\n", args...) }

// kernel emits one micro-kernel. It multiplies an mr×kc packed panel of A
// (column-major within the panel: mr values per k step) by a kc×nr packed
// panel of B (nr values per k step) and stores alpha·AB + beta·C to the
// mr×nr tile of C at c with row stride ldc (floats). With beta == 0, C is
// not read.
//
// With direct set, the kernel reads A unpacked instead: mr rows of a
// row-major matrix with row stride lda (floats), one column per k step, so
// a non-transposed A need not be packed. The arithmetic is the same, so
// both forms give bit-identical tiles.
func kernel(name, reg string, mr, vecs, width int, direct bool) {
	nr := vecs * width
	nacc := mr * vecs
	bReg := func(v int) string { return fmt.Sprintf("%s%d", reg, nacc+v) }
	bc := func(i int) string { return fmt.Sprintf("%s%d", reg, nacc+vecs+i%2) }
	acc := func(i, v int) string { return fmt.Sprintf("%s%d", reg, i*vecs+v) }
	// Frame offsets: direct kernels take lda after a.
	o := 0
	if direct {
		o = 8
		fmt.Fprintf(&out, "\n// func %s(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)\n", name)
		fmt.Fprintf(&out, "TEXT ·%s(SB), NOSPLIT, $0-56\n", name)
	} else {
		fmt.Fprintf(&out, "\n// func %s(kc int, a, b, c *float32, ldc int, alpha, beta float32)\n", name)
		fmt.Fprintf(&out, "TEXT ·%s(SB), NOSPLIT, $0-48\n", name)
	}
	p("MOVQ kc+0(FP), CX")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+%d(FP), DI", 16+o)
	p("MOVQ c+%d(FP), DX", 24+o)
	p("MOVQ ldc+%d(FP), R8", 32+o)
	p("SHLQ $2, R8")
	// Direct A: row i is at bases[i/4] + (0, 1, 2, 3)·lda bytes.
	bases := []string{"SI", "R11", "R12", "R13"}
	if direct {
		p("MOVQ lda+16(FP), R9")
		p("SHLQ $2, R9")
		p("LEAQ (R9)(R9*2), R10")
		for g := 1; g*4 < mr; g++ {
			p("LEAQ (%s)(R9*4), %s", bases[g-1], bases[g])
		}
	}
	aAddr := func(i int) string {
		if !direct {
			return fmt.Sprintf("%d(SI)", i*4)
		}
		b := bases[i/4]
		return [...]string{"(" + b + ")", "(" + b + ")(R9*1)", "(" + b + ")(R9*2)", "(" + b + ")(R10*1)"}[i%4]
	}
	for i := 0; i < nacc; i++ {
		r := fmt.Sprintf("%s%d", reg, i)
		if reg == "Z" {
			p("VPXORD %s, %s, %s", r, r, r)
		} else {
			p("VXORPS %s, %s, %s", r, r, r)
		}
	}
	p("TESTQ CX, CX")
	p("JEQ %s_store", name)
	fmt.Fprintf(&out, "%s_loop:\n", name)
	for v := 0; v < vecs; v++ {
		p("VMOVUPS %d(DI), %s", v*width*4, bReg(v))
	}
	for i := 0; i < mr; i++ {
		p("VBROADCASTSS %s, %s", aAddr(i), bc(i))
		for v := 0; v < vecs; v++ {
			p("VFMADD231PS %s, %s, %s", bReg(v), bc(i), acc(i, v))
		}
	}
	if direct {
		for g := 0; g*4 < mr; g++ {
			p("ADDQ $4, %s", bases[g])
		}
	} else {
		p("ADDQ $%d, SI", mr*4)
	}
	p("ADDQ $%d, DI", nr*4)
	p("DECQ CX")
	p("JNE %s_loop", name)
	fmt.Fprintf(&out, "%s_store:\n", name)
	al, be := bReg(0), bc(0)
	p("VBROADCASTSS alpha+%d(FP), %s", 40+o, al)
	p("VBROADCASTSS beta+%d(FP), %s", 44+o, be)
	p("MOVL beta+%d(FP), AX", 44+o)
	p("SHLL $1, AX") // ±0 become 0
	p("JNE %s_beta", name)
	for i := 0; i < mr; i++ {
		for v := 0; v < vecs; v++ {
			p("VMULPS %s, %s, %s", al, acc(i, v), acc(i, v))
			p("VMOVUPS %s, %d(DX)", acc(i, v), v*width*4)
		}
		if i < mr-1 {
			p("ADDQ R8, DX")
		}
	}
	p("VZEROUPPER")
	p("RET")
	fmt.Fprintf(&out, "%s_beta:\n", name)
	for i := 0; i < mr; i++ {
		for v := 0; v < vecs; v++ {
			p("VMULPS %s, %s, %s", al, acc(i, v), acc(i, v))
			p("VFMADD231PS %d(DX), %s, %s", v*width*4, be, acc(i, v))
			p("VMOVUPS %s, %d(DX)", acc(i, v), v*width*4)
		}
		if i < mr-1 {
			p("ADDQ R8, DX")
		}
	}
	p("VZEROUPPER")
	p("RET")
}

// binop emits func name(dst, x, y []float32): dst = x op y over the first
// len(dst)&^7 elements. With relu, the result is clamped at 0.
func binop(name, op string, relu bool) {
	fmt.Fprintf(&out, "\n// func %s(dst, x, y []float32)\n", name)
	fmt.Fprintf(&out, "TEXT ·%s(SB), NOSPLIT, $0-72\n", name)
	p("MOVQ dst_base+0(FP), DI")
	p("MOVQ dst_len+8(FP), CX")
	p("MOVQ x_base+24(FP), SI")
	p("MOVQ y_base+48(FP), DX")
	p("SHRQ $3, CX")
	p("JEQ %s_done", name)
	if relu {
		p("VXORPS Y15, Y15, Y15")
	}
	fmt.Fprintf(&out, "%s_loop:\n", name)
	p("VMOVUPS (SI), Y0")
	p("%s (DX), Y0, Y0", op)
	if relu {
		p("VMAXPS Y15, Y0, Y0")
	}
	p("VMOVUPS Y0, (DI)")
	p("ADDQ $32, SI")
	p("ADDQ $32, DX")
	p("ADDQ $32, DI")
	p("DECQ CX")
	p("JNE %s_loop", name)
	p("VZEROUPPER")
	fmt.Fprintf(&out, "%s_done:\n", name)
	p("RET")
}

// unop emits func name(alpha float32, x []float32) returning, for the first
// len(x)&^7 elements, either x *= alpha (scale) or the maximum (max, where
// alpha is the starting value).
func unop(name string, isMax bool) {
	fmt.Fprintf(&out, "\n// func %s(alpha float32, x []float32) float32\n", name)
	fmt.Fprintf(&out, "TEXT ·%s(SB), NOSPLIT, $0-36\n", name)
	p("MOVQ x_base+8(FP), SI")
	p("MOVQ x_len+16(FP), CX")
	p("SHRQ $3, CX")
	p("VBROADCASTSS alpha+0(FP), Y1")
	p("TESTQ CX, CX")
	p("JEQ %s_done", name)
	fmt.Fprintf(&out, "%s_loop:\n", name)
	if isMax {
		p("VMAXPS (SI), Y1, Y1")
	} else {
		p("VMULPS (SI), Y1, Y0")
		p("VMOVUPS Y0, (SI)")
	}
	p("ADDQ $32, SI")
	p("DECQ CX")
	p("JNE %s_loop", name)
	fmt.Fprintf(&out, "%s_done:\n", name)
	if isMax {
		p("VEXTRACTF128 $1, Y1, X0")
		p("VMAXPS X0, X1, X1")
		p("VMOVHLPS X1, X0, X0")
		p("VMAXPS X0, X1, X1")
		p("VMOVSHDUP X1, X0")
		p("VMAXSS X0, X1, X1")
	}
	p("MOVSS X1, ret+32(FP)")
	p("VZEROUPPER")
	p("RET")
}

func main() {
	out.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !noasm\n\n#include \"textflag.h\"\n")
	kernel("sgemmKernel6x16AVX2", "Y", 6, 2, 8, false)
	kernel("sgemmKernel12x32AVX512", "Z", 12, 2, 16, false)
	kernel("sgemmKernel16x16AVX512", "Z", 16, 1, 16, false)
	kernel("sgemmKernel6x16AVX2Direct", "Y", 6, 2, 8, true)
	kernel("sgemmKernel12x32AVX512Direct", "Z", 12, 2, 16, true)
	kernel("sgemmKernel16x16AVX512Direct", "Z", 16, 1, 16, true)
	write("sgemm_amd64.s")
	out.WriteString("// Code generated by gen_asm.go; DO NOT EDIT.\n\n//go:build !noasm\n\n#include \"textflag.h\"\n")
	binop("addAVX2", "VADDPS", false)
	binop("mulAVX2", "VMULPS", false)
	binop("addReluAVX2", "VADDPS", true)
	unop("scaleAVX2", false)
	unop("maxAVX2", true)
	write("vecops_amd64.s")
}

func write(name string) {
	if err := os.WriteFile(name, out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out.Reset()
}
