//go:build !noasm

#include "textflag.h"

// Constants, each repeated over 8 lanes. exp follows Cephes expf.
DATA expHi<>+0(SB)/4, $88.3762626647949
DATA expHi<>+4(SB)/4, $88.3762626647949
DATA expHi<>+8(SB)/4, $88.3762626647949
DATA expHi<>+12(SB)/4, $88.3762626647949
DATA expHi<>+16(SB)/4, $88.3762626647949
DATA expHi<>+20(SB)/4, $88.3762626647949
DATA expHi<>+24(SB)/4, $88.3762626647949
DATA expHi<>+28(SB)/4, $88.3762626647949
GLOBL expHi<>(SB), RODATA|NOPTR, $32
DATA expLo<>+0(SB)/4, $-87.3
DATA expLo<>+4(SB)/4, $-87.3
DATA expLo<>+8(SB)/4, $-87.3
DATA expLo<>+12(SB)/4, $-87.3
DATA expLo<>+16(SB)/4, $-87.3
DATA expLo<>+20(SB)/4, $-87.3
DATA expLo<>+24(SB)/4, $-87.3
DATA expLo<>+28(SB)/4, $-87.3
GLOBL expLo<>(SB), RODATA|NOPTR, $32
DATA expLog2e<>+0(SB)/4, $1.44269504088896341
DATA expLog2e<>+4(SB)/4, $1.44269504088896341
DATA expLog2e<>+8(SB)/4, $1.44269504088896341
DATA expLog2e<>+12(SB)/4, $1.44269504088896341
DATA expLog2e<>+16(SB)/4, $1.44269504088896341
DATA expLog2e<>+20(SB)/4, $1.44269504088896341
DATA expLog2e<>+24(SB)/4, $1.44269504088896341
DATA expLog2e<>+28(SB)/4, $1.44269504088896341
GLOBL expLog2e<>(SB), RODATA|NOPTR, $32
DATA expC1<>+0(SB)/4, $0.693359375
DATA expC1<>+4(SB)/4, $0.693359375
DATA expC1<>+8(SB)/4, $0.693359375
DATA expC1<>+12(SB)/4, $0.693359375
DATA expC1<>+16(SB)/4, $0.693359375
DATA expC1<>+20(SB)/4, $0.693359375
DATA expC1<>+24(SB)/4, $0.693359375
DATA expC1<>+28(SB)/4, $0.693359375
GLOBL expC1<>(SB), RODATA|NOPTR, $32
DATA expC2<>+0(SB)/4, $-2.12194440e-4
DATA expC2<>+4(SB)/4, $-2.12194440e-4
DATA expC2<>+8(SB)/4, $-2.12194440e-4
DATA expC2<>+12(SB)/4, $-2.12194440e-4
DATA expC2<>+16(SB)/4, $-2.12194440e-4
DATA expC2<>+20(SB)/4, $-2.12194440e-4
DATA expC2<>+24(SB)/4, $-2.12194440e-4
DATA expC2<>+28(SB)/4, $-2.12194440e-4
GLOBL expC2<>(SB), RODATA|NOPTR, $32
DATA expP0<>+0(SB)/4, $1.9875691500e-4
DATA expP0<>+4(SB)/4, $1.9875691500e-4
DATA expP0<>+8(SB)/4, $1.9875691500e-4
DATA expP0<>+12(SB)/4, $1.9875691500e-4
DATA expP0<>+16(SB)/4, $1.9875691500e-4
DATA expP0<>+20(SB)/4, $1.9875691500e-4
DATA expP0<>+24(SB)/4, $1.9875691500e-4
DATA expP0<>+28(SB)/4, $1.9875691500e-4
GLOBL expP0<>(SB), RODATA|NOPTR, $32
DATA expP1<>+0(SB)/4, $1.3981999507e-3
DATA expP1<>+4(SB)/4, $1.3981999507e-3
DATA expP1<>+8(SB)/4, $1.3981999507e-3
DATA expP1<>+12(SB)/4, $1.3981999507e-3
DATA expP1<>+16(SB)/4, $1.3981999507e-3
DATA expP1<>+20(SB)/4, $1.3981999507e-3
DATA expP1<>+24(SB)/4, $1.3981999507e-3
DATA expP1<>+28(SB)/4, $1.3981999507e-3
GLOBL expP1<>(SB), RODATA|NOPTR, $32
DATA expP2<>+0(SB)/4, $8.3334519073e-3
DATA expP2<>+4(SB)/4, $8.3334519073e-3
DATA expP2<>+8(SB)/4, $8.3334519073e-3
DATA expP2<>+12(SB)/4, $8.3334519073e-3
DATA expP2<>+16(SB)/4, $8.3334519073e-3
DATA expP2<>+20(SB)/4, $8.3334519073e-3
DATA expP2<>+24(SB)/4, $8.3334519073e-3
DATA expP2<>+28(SB)/4, $8.3334519073e-3
GLOBL expP2<>(SB), RODATA|NOPTR, $32
DATA expP3<>+0(SB)/4, $4.1665795894e-2
DATA expP3<>+4(SB)/4, $4.1665795894e-2
DATA expP3<>+8(SB)/4, $4.1665795894e-2
DATA expP3<>+12(SB)/4, $4.1665795894e-2
DATA expP3<>+16(SB)/4, $4.1665795894e-2
DATA expP3<>+20(SB)/4, $4.1665795894e-2
DATA expP3<>+24(SB)/4, $4.1665795894e-2
DATA expP3<>+28(SB)/4, $4.1665795894e-2
GLOBL expP3<>(SB), RODATA|NOPTR, $32
DATA expP4<>+0(SB)/4, $1.6666665459e-1
DATA expP4<>+4(SB)/4, $1.6666665459e-1
DATA expP4<>+8(SB)/4, $1.6666665459e-1
DATA expP4<>+12(SB)/4, $1.6666665459e-1
DATA expP4<>+16(SB)/4, $1.6666665459e-1
DATA expP4<>+20(SB)/4, $1.6666665459e-1
DATA expP4<>+24(SB)/4, $1.6666665459e-1
DATA expP4<>+28(SB)/4, $1.6666665459e-1
GLOBL expP4<>(SB), RODATA|NOPTR, $32
DATA expP5<>+0(SB)/4, $5.0000001201e-1
DATA expP5<>+4(SB)/4, $5.0000001201e-1
DATA expP5<>+8(SB)/4, $5.0000001201e-1
DATA expP5<>+12(SB)/4, $5.0000001201e-1
DATA expP5<>+16(SB)/4, $5.0000001201e-1
DATA expP5<>+20(SB)/4, $5.0000001201e-1
DATA expP5<>+24(SB)/4, $5.0000001201e-1
DATA expP5<>+28(SB)/4, $5.0000001201e-1
GLOBL expP5<>(SB), RODATA|NOPTR, $32
DATA one<>+0(SB)/4, $1.0
DATA one<>+4(SB)/4, $1.0
DATA one<>+8(SB)/4, $1.0
DATA one<>+12(SB)/4, $1.0
DATA one<>+16(SB)/4, $1.0
DATA one<>+20(SB)/4, $1.0
DATA one<>+24(SB)/4, $1.0
DATA one<>+28(SB)/4, $1.0
GLOBL one<>(SB), RODATA|NOPTR, $32
DATA half<>+0(SB)/4, $0.5
DATA half<>+4(SB)/4, $0.5
DATA half<>+8(SB)/4, $0.5
DATA half<>+12(SB)/4, $0.5
DATA half<>+16(SB)/4, $0.5
DATA half<>+20(SB)/4, $0.5
DATA half<>+24(SB)/4, $0.5
DATA half<>+28(SB)/4, $0.5
GLOBL half<>(SB), RODATA|NOPTR, $32
DATA geluBeta<>+0(SB)/4, $0.7978845608028654
DATA geluBeta<>+4(SB)/4, $0.7978845608028654
DATA geluBeta<>+8(SB)/4, $0.7978845608028654
DATA geluBeta<>+12(SB)/4, $0.7978845608028654
DATA geluBeta<>+16(SB)/4, $0.7978845608028654
DATA geluBeta<>+20(SB)/4, $0.7978845608028654
DATA geluBeta<>+24(SB)/4, $0.7978845608028654
DATA geluBeta<>+28(SB)/4, $0.7978845608028654
GLOBL geluBeta<>(SB), RODATA|NOPTR, $32
DATA geluKappa<>+0(SB)/4, $0.044715
DATA geluKappa<>+4(SB)/4, $0.044715
DATA geluKappa<>+8(SB)/4, $0.044715
DATA geluKappa<>+12(SB)/4, $0.044715
DATA geluKappa<>+16(SB)/4, $0.044715
DATA geluKappa<>+20(SB)/4, $0.044715
DATA geluKappa<>+24(SB)/4, $0.044715
DATA geluKappa<>+28(SB)/4, $0.044715
GLOBL geluKappa<>(SB), RODATA|NOPTR, $32
DATA geluMinus2Beta<>+0(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+4(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+8(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+12(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+16(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+20(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+24(SB)/4, $-1.5957691216057308
DATA geluMinus2Beta<>+28(SB)/4, $-1.5957691216057308
GLOBL geluMinus2Beta<>(SB), RODATA|NOPTR, $32
DATA geluKappa3<>+0(SB)/4, $0.134145
DATA geluKappa3<>+4(SB)/4, $0.134145
DATA geluKappa3<>+8(SB)/4, $0.134145
DATA geluKappa3<>+12(SB)/4, $0.134145
DATA geluKappa3<>+16(SB)/4, $0.134145
DATA geluKappa3<>+20(SB)/4, $0.134145
DATA geluKappa3<>+24(SB)/4, $0.134145
DATA geluKappa3<>+28(SB)/4, $0.134145
GLOBL geluKappa3<>(SB), RODATA|NOPTR, $32

// EXP sets Y3 = exp(Y0) lane-wise, clobbering Y0, Y1, Y2, with Y4 = expHi and
// Y5 = expLo loaded. Inputs below -87.3 give 0, NaN gives NaN, and large
// inputs saturate at exp(88.376).
#define EXP \
	VCMPPS $5, Y5, Y0, Y1 \
	VMINPS Y0, Y4, Y0 \
	VMAXPS Y0, Y5, Y0 \
	VMULPS expLog2e<>(SB), Y0, Y2 \
	VROUNDPS $0, Y2, Y2 \
	VFNMADD231PS expC1<>(SB), Y2, Y0 \
	VFNMADD231PS expC2<>(SB), Y2, Y0 \
	VMOVUPS expP0<>(SB), Y3 \
	VFMADD213PS expP1<>(SB), Y0, Y3 \
	VFMADD213PS expP2<>(SB), Y0, Y3 \
	VFMADD213PS expP3<>(SB), Y0, Y3 \
	VFMADD213PS expP4<>(SB), Y0, Y3 \
	VFMADD213PS expP5<>(SB), Y0, Y3 \
	VFMADD213PS one<>(SB), Y0, Y3 \
	VFMADD213PS one<>(SB), Y0, Y3 \
	VCVTPS2DQ Y2, Y2 \
	VPSLLD $23, Y2, Y2 \
	VPADDD Y2, Y3, Y3 \
	VANDPS Y1, Y3, Y3

#define LOADEXP \
	VMOVUPS expHi<>(SB), Y4 \
	VMOVUPS expLo<>(SB), Y5

// func expShiftAVX2(dst, src []float32, shift float32) float32
// dst[i] = exp(src[i]-shift) for the first len(src)&^7 elements; returns
// their sum, taken in 8 lanes and then across the lanes in a fixed order.
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-60
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX
	LOADEXP
	VBROADCASTSS shift+48(FP), Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JEQ expshift_done
expshift_loop:
	VMOVUPS (SI), Y0
	VSUBPS Y6, Y0, Y0
	EXP
	VMOVUPS Y3, (DI)
	VADDPS Y3, Y7, Y7
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE expshift_loop
expshift_done:
	VEXTRACTF128 $1, Y7, X0
	VADDPS X0, X7, X7
	VMOVHLPS X7, X0, X0
	VADDPS X0, X7, X7
	VMOVSHDUP X7, X0
	VADDSS X0, X7, X7
	MOVSS X7, ret+56(FP)
	VZEROUPPER
	RET

// func geluAVX2(dst, src []float32)
// dst = x·sigmoid(2u), u = β(x+κx³), which is 0.5·x·(1+tanh u), over the
// first len(src)&^7 elements.
TEXT ·geluAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX
	JEQ gelu_done
	LOADEXP
gelu_loop:
	VMOVUPS (SI), Y6
	VMULPS Y6, Y6, Y0
	VMULPS geluKappa<>(SB), Y0, Y0
	VFMADD213PS Y6, Y6, Y0            // x + κx³
	VMULPS geluMinus2Beta<>(SB), Y0, Y0 // -2u
	EXP
	VADDPS one<>(SB), Y3, Y3
	VDIVPS Y3, Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE gelu_loop
	VZEROUPPER
gelu_done:
	RET

// func geluBackwardAVX2(dx, x, dy []float32)
// dx = dy·(s + 2x·s(1−s)·β(1+3κx²)), s = sigmoid(2u), over the first
// len(x)&^7 elements.
TEXT ·geluBackwardAVX2(SB), NOSPLIT, $0-72
	MOVQ dx_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ dy_base+48(FP), DX
	SHRQ $3, CX
	JEQ geluback_done
	LOADEXP
	VMOVUPS one<>(SB), Y15
geluback_loop:
	VMOVUPS (SI), Y6
	VMULPS Y6, Y6, Y7                 // x²
	VMULPS geluKappa<>(SB), Y7, Y0
	VFMADD213PS Y6, Y6, Y0            // x + κx³
	VMULPS geluMinus2Beta<>(SB), Y0, Y0
	EXP
	VADDPS Y15, Y3, Y3
	VDIVPS Y3, Y15, Y8                // s
	VSUBPS Y8, Y15, Y9                // 1-s
	VMULPS Y8, Y9, Y9                 // s(1-s)
	VADDPS Y6, Y6, Y10                // 2x
	VMULPS Y10, Y9, Y9                // 2x·s(1-s)
	VMULPS geluKappa3<>(SB), Y7, Y7   // 3κx²
	VADDPS Y15, Y7, Y7
	VMULPS geluBeta<>(SB), Y7, Y7     // β(1+3κx²)
	VFMADD213PS Y8, Y7, Y9            // s + 2x·s(1-s)·β(1+3κx²)
	VMULPS (DX), Y9, Y9
	VMOVUPS Y9, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNE geluback_loop
	VZEROUPPER
geluback_done:
	RET

// func adamWAVX2(p, g, m, v []float32, c *[8]float32)
// c holds decay, step, rbc2, eps, beta1, 1-beta1, beta2, 1-beta2; runs over
// the first len(p)&^7 elements.
TEXT ·adamWAVX2(SB), NOSPLIT, $0-104
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	MOVQ c+96(FP), AX
	SHRQ $3, CX
	JEQ adamw_done
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 16(AX), Y12
	VBROADCASTSS 20(AX), Y13
	VBROADCASTSS 24(AX), Y14
	VBROADCASTSS 28(AX), Y15
adamw_loop:
	VMOVUPS (SI), Y0       // g
	VMULPS (R8), Y12, Y1   // beta1·m
	VMULPS Y0, Y13, Y2     // (1-beta1)·g
	VADDPS Y2, Y1, Y1      // m
	VMOVUPS Y1, (R8)
	VMULPS (R9), Y14, Y3   // beta2·v
	VMULPS Y0, Y15, Y2
	VMULPS Y0, Y2, Y2      // (1-beta2)·g·g
	VADDPS Y2, Y3, Y3      // v
	VMOVUPS Y3, (R9)
	VSQRTPS Y3, Y3
	VMULPS Y10, Y3, Y3
	VADDPS Y11, Y3, Y3     // denom
	VMULPS Y9, Y1, Y1
	VDIVPS Y3, Y1, Y1      // step·m/denom
	VMULPS (DI), Y8, Y2    // p·decay
	VSUBPS Y1, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNE adamw_loop
	VZEROUPPER
adamw_done:
	RET

// func axpyAVX2(alpha float32, x, y []float32)
// y += alpha·x over the first len(y)&^7 elements.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	MOVQ x_base+8(FP), SI
	MOVQ y_base+32(FP), DI
	MOVQ y_len+40(FP), CX
	SHRQ $3, CX
	JEQ axpy_done
	VBROADCASTSS alpha+0(FP), Y0
axpy_loop:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE axpy_loop
	VZEROUPPER
axpy_done:
	RET

// func dotAVX2(x, y []float32) float32
// Σ x·y over the first len(x)&^31 elements, in 32 lanes (four 8-lane
// accumulators) summed in a fixed order.
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	SHRQ $5, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ CX, CX
	JEQ dot_sum
dot_loop:
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ CX
	JNE dot_loop
dot_sum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X1, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	MOVSS X0, ret+48(FP)
	VZEROUPPER
	RET


// func transpose8AVX2(dst *float32, w int, src *float32, ld int, blocks int)
// For q < 8·blocks and j < 8: dst[q*w+j] = src[j*ld+q]. Moves 8×8 blocks
// through registers.
TEXT ·transpose8AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), R9
	SHLQ $2, R9
	MOVQ blocks+32(FP), CX
	TESTQ CX, CX
	JEQ tr_done
	LEAQ (R9)(R9*2), R10
	LEAQ (SI)(R9*4), R11
	LEAQ (R8)(R8*2), R12
tr_loop:
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(R9*1), Y1
	VMOVUPS (SI)(R9*2), Y2
	VMOVUPS (SI)(R10*1), Y3
	VMOVUPS (R11), Y4
	VMOVUPS (R11)(R9*1), Y5
	VMOVUPS (R11)(R9*2), Y6
	VMOVUPS (R11)(R10*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	LEAQ (DI)(R8*4), R13
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R8*1)
	VMOVUPS Y10, (DI)(R8*2)
	VMOVUPS Y11, (DI)(R12*1)
	VMOVUPS Y12, (R13)
	VMOVUPS Y13, (R13)(R8*1)
	VMOVUPS Y14, (R13)(R8*2)
	VMOVUPS Y15, (R13)(R12*1)
	LEAQ (DI)(R8*8), DI
	ADDQ $32, SI
	ADDQ $32, R11
	DECQ CX
	JNE tr_loop
	VZEROUPPER
tr_done:
	RET


// func reluBackAVX2(dx, y, dy []float32)
// dx = dy where y > 0, else 0, over the first len(dx)&^7 elements.
TEXT ·reluBackAVX2(SB), NOSPLIT, $0-72
	MOVQ dx_base+0(FP), DI
	MOVQ dx_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	SHRQ $3, CX
	JEQ reluback_done
	VXORPS Y15, Y15, Y15
reluback_loop:
	VMOVUPS (SI), Y0
	VCMPPS $0x0E, Y15, Y0, Y0 // y > 0
	VANDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNE reluback_loop
	VZEROUPPER
reluback_done:
	RET

// func reluBackAddAVX2(dx, y, dy []float32)
// dx += dy where y > 0, over the first len(dx)&^7 elements.
TEXT ·reluBackAddAVX2(SB), NOSPLIT, $0-72
	MOVQ dx_base+0(FP), DI
	MOVQ dx_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	SHRQ $3, CX
	JEQ relubackadd_done
	VXORPS Y15, Y15, Y15
relubackadd_loop:
	VMOVUPS (SI), Y0
	VCMPPS $0x0E, Y15, Y0, Y0 // y > 0
	VANDPS (DX), Y0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNE relubackadd_loop
	VZEROUPPER
relubackadd_done:
	RET

// func reluAVX2(dst, x []float32)
// dst = max(x, 0) over the first len(dst)&^7 elements; a NaN stays NaN.
TEXT ·reluAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	SHRQ $3, CX
	JEQ relu_done
	VXORPS Y15, Y15, Y15
relu_loop:
	VMOVUPS (SI), Y0
	VMAXPS Y0, Y15, Y0 // second source (x) wins on NaN
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE relu_loop
	VZEROUPPER
relu_done:
	RET
