// Package methods holds peftbench's parameter-efficient fine-tuning methods,
// one file each, registered by name like database/sql drivers:
//
//	full       full fine-tuning of the targeted layers (baseline)
//	lora       ΔW = (α/r)·B·A                                Hu et al. 2021
//	rslora     s = α/√r                                      Kalajdzievski 2023
//	loraplus   lr_B = λ·lr_A, λ = 16                         Hayou et al. 2024
//	lora-fa    A frozen, B trained (+ preconditioning)       Zhang et al. 2023
//	dora       magnitude × normalised direction              Liu et al. 2024
//	pissa      A, B from the top SVD of W0                   Meng et al. 2024
//	olora      A, B from the QR of W0                        Büyükakyüz 2024
//	vera       shared frozen A, B; train d, b                Kopiczko et al. 2023
//	lora-xs    train r×r R between SVD factors of W0         Bałazy et al. 2024
//	adalora    P·Λ·Q with an importance-scored budget        Zhang et al. 2023
//	lora-ga    A, B from the SVD of the gradient             Wang et al. 2024
//	loha       ΔW = (α/r)·(B1A1)⊙(B2A2)                      Hyeon-Woo et al. 2021
//	lokr       ΔW = (α/r)·W1⊗W2                              Yeh et al. 2023
//	hira       ΔW = W0⊙(B·A)                                 Huang et al. 2025
//	oft        W' = W0·Rᵀ, R block-diagonal Cayley           Qiu et al. 2023/2025
//	boft       W' = diag(s)·W0·Mᵀ, M butterfly of Cayleys    Liu et al. 2023
//	hra        W' = W0·H, H a product of reflections         Yuan et al. 2024
//	road       y ← pairwise 2-D rotations of the output      Liao et al. 2024
//	ia3        y ← l ⊙ output, or input ⊙ l (feedforward)    Liu et al. 2022
//	miss       ΔW = [Dᵀ … Dᵀ] (shard sharing), Bone's "bat"  Kang and Yin 2024
//	shira      ΔW sparse at r·(in+out) fixed entries         Bhardwaj et al. 2024
//	delora     ΔW = (λ/r)·B·Ξ·A·diag(‖W0 cols‖)              Bini et al. 2025
//	fourierft  ΔW = α·Re(IDFT2(sparse spectrum))             Gao et al. 2024
//	c3a        ΔW block-circulant (FFT convolution)          Chen et al. 2024
//	vblora     A, B mixed from one shared vector bank        Li et al. 2024
//	randlora   Σ frozen random bases scaled by λ, γ          Albert et al. 2025
//	gralora    a k×k grid of block LoRAs                     Jung et al. 2025
//	ln-tuning  train copies of the norm layers               Zhao et al. 2023
//
// Batch B, the published variants HF PEFT does not ship (cross-checked
// against the papers and the authors' code) and optimiser-level methods:
//
//	mora       ΔW = f_dec(M·f_comp), M r̂×r̂, r̂² ≈ r(in+out)   Jiang et al. 2024
//	tied-lora  ΔW = (α/r)·Λ_v·B·Λ_u·A, A, B tied per type    Renduchintala et al. 2023
//	singlora   ΔW = (α/r)·u(t)·A·Aᵀ, u(t) = min(t/T, 1)      Bensaïd et al. 2025
//	nola       A, B = Σ trained coefficients × random bases  Koohpayegani et al. 2023
//	dylora     rank b ~ U{r_min..r_max} per step, s = α/b    Valipour et al. 2022
//	melora     ΔW = blockdiag(B_iA_i)·α/(r/g), g mini LoRAs  Ren et al. 2024
//	moslora    ΔW = (α/r)·B·M·A, trainable r×r mixer M       Wu et al. 2024
//	kradapter  ΔW = s·(row-wise Khatri–Rao of U, V), crop    Albert et al. 2025
//	loldu      σ·P·L_r·diag(z)·U_r from pivoted LDU; z, σ    Shi et al. 2024
//	svfit      W_e + U_r·diag(σ')·V_rᵀ; train top-r σ'       Sun et al. 2024
//	salt       U·ReLU(S')·Vᵀ: α⊙S_r+β, rest + X·Y            Elsayed et al. 2025
//	lori       ΔW = (α/r)·(B⊙M)·A, A frozen, mask of |B|     Zhang et al. 2025
//	eva        A = top PCA directions of the inputs, B = 0   Paischer et al. 2024
//	corda      A, B from the SVD of W0·Cov(inputs)           Yang et al. 2024
//	lora-one   A, B from the SVD of −∇W0 L; W0 not reset     Zhang, Liu and Chen 2025
//	lora-sb    B·R·A; R = S_r of −η·sign(∇W0 L), R trains    Ponkshe, Singhal et al. 2024
//	galore     Adam on the rank-r SVD projection of the gradient Zhao et al. 2024
//	flora      Adam's momentum as a resampled random projection  Hao et al. 2024
//	fira       GaLore + norm-scaled, growth-limited residual     Chen et al. 2024
//	riemannian g_A ← (BᵀB+λI)⁻¹g_A, g_B ← g_B(AAᵀ+λI)⁻¹      Zhang and Pilanci 2024
//	lora-pro   Adam on s(B·g̃_A+g̃_B·A), mapped back to A, B   Wang et al. 2024
//	cola       LoRAs merged at stage ends: Σ s·B_j·A_j       Xia et al. 2024
//	lisa       full FT of γ random blocks per K steps        Pan et al. 2024
//	coto       LoRA, adapters off at random; p 0.1 → 1       Zhuang et al. 2025
//	aflora     ΔW = Λ_b·B·Λ_d·A; A, B frozen by a score      Liu et al. 2024
//	allora     ΔW = B·A; row lr = lr/√(‖row‖² + 1/η²)        Huang and Balestriero 2024
//
// Every method declares an Info (family, paper, options with defaults and
// ranges, and its trainable-parameter count as a formula) and implements
// Method. Adding a method is adding a file with an init that calls
// Register; the conformance test then runs it on the reference models, at
// its defaults and at the second option set it declares (Info.AltOptions).
//
// # What a method declares
//
// The rank axis: a sweep's rank sets Info.RankOption, "rank" for low-rank
// methods and the method's own size option elsewhere (OFT's
// oft_block_size, BOFT's boft_block_size, FourierFT's n_frequency, C3A's
// block_size); methods without a size axis (full, IA3, RoAd, LN tuning)
// refuse a rank. The initialisation: the adapted model starts exactly at
// the base unless Info.InitDeviation bounds a published near-no-op
// (LoRA-XS) or Info.RandomInit says HF PEFT's default init is not a no-op
// (FourierFT's N(0,1) spectrum, C3A's Xavier kernels, VB-LoRA's bank), in
// which case Info.IdentityOptions names the options under which it is; the
// conformance suite checks whichever is declared.
//
// Additive methods change W0 by ΔW; multiplicative and orthogonal ones
// (OFT, BOFT, HRA: W0·Rᵀ; RoAd, IA3: a transform of the output) change it
// by a product. Both give their merged weight through nn.Adapter.Merged,
// so spectra, intruder counts and merging need nothing per method; methods
// that also transform the layer's bias (RoAd, IA3's output form) implement
// BiasMerger, and a merge swaps in both.
//
// # Options
//
// ResolveOptions validates a method's options (unknown keys, types,
// ranges, choices: errors are *OptionError naming the key) and fills in
// defaults, which follow the papers and HF PEFT (LoRA: r = 8, α = 8). alpha
// may be given as a multiple of the rank, "2r". CheckLayers checks
// resolved options against the targeted layer shapes at sweep-load time
// (rank ≤ min(out, in); LoRA-GA needs 2r; AdaLoRA checks its initial rank;
// VeRA's random projections allow any rank).
//
// # Trainer contract
//
// A trainer (package train, or a test) drives a method like this, and
// never names one:
//
//	att, err := methods.Attach(name, layers, opts, nn.NewRNG(seed, "method"))
//	if c, ok := att.(methods.InputCalibrator); ok {    // EVA, CorDA
//		err = c.CalibrateInputs(methods.EstimateInputs(forwardOfBatch))
//	}
//	if b, ok := att.(methods.BeforeTrainer); ok {      // LoRA-GA
//		err = b.BeforeTraining(methods.EstimateGrads(lossOfBatch))
//	}
//	params := att.Params()                             // after BeforeTraining
//	var opt nn.Optimizer = adamW                       // the trial's optimiser
//	if m, ok := att.(methods.OptimizerMaker); ok {     // GaLore, Flora
//		opt, err = m.Optimizer(adamW)
//	}
//	att.SetTraining(nn.NewRNG(seed, "dropout"))        // nil for evaluation
//	for step := range total {
//		if h, ok := att.(methods.StepStarter); ok { h.StartStep(step, total) }         // LISA
//		g.Reset(); nn.ZeroGrads(params)
//		loss := taskLoss(g)
//		if r, ok := att.(methods.Regularizer); ok {    // AdaLoRA
//			if reg := r.Regularizer(g); reg != nil { loss = g.Add(loss, reg) }
//		}
//		g.Backward(loss)
//		nn.ClipGradNorm(params, clip)                  // the raw gradient
//		if h, ok := att.(methods.BeforeStepper); ok { h.BeforeStep(step, total) }       // LoRA-FA
//		opt.Step(params, lr)                           // ParamRef.LRMul: LoRA+
//		if h, ok := att.(methods.AfterStepper); ok { h.AfterStep(step, total) }         // AdaLoRA
//	}
//	if v, ok := att.(methods.Variants); ok {           // DyLoRA: every rank ≤ r
//		for _, name := range v.Variants() { v.UseVariant(name); evaluate(name) }
//		v.UseVariant("")
//	}
//
// step counts from 0 and total is the run's number of steps (AdaLoRA's
// schedule is stated in fractions of it). Attach sets each layer's
// nn.Adapter; Linear.Merged then gives W0 + ΔW for spectra and export, and
// l.Weight stays W0 for every method but full (PiSSA, OLoRA and LoRA-GA
// keep their frozen initial factors instead of overwriting W0 with a
// residual), so evaluating the base model is switching adapters off.
//
// # Fidelity
//
// Each method follows its paper and HF PEFT's source (or, where HF PEFT
// lacks it, the authors' code), and TestTorchCrossCheck trains every one
// against an independent PyTorch re-implementation. Choices worth knowing:
// DoRA's row norm is detached; VeRA's one shared pair of projections comes
// from torch.Generator(projection_seed) exactly as HF PEFT draws it
// (nn.TorchGenerator), sized to the largest targeted shapes and sliced;
// LoRA-XS's R starts N(0, 1e-5²), so its step-0 outputs differ from the base
// by O(1e-5) (Info.InitDeviation); AdaLoRA's rank option is the target rank,
// its initial rank ⌈1.5·r⌉ by default.
//
// # Conventions that differ from HF PEFT
//
//   - AdaLoRA: tinit and tfinal are fractions of the run's steps (HF: steps,
//     default 0), rounded half up; the schedule's step t counts optimiser
//     steps from 1 (HF's examples pass a global_step counted from 0), so the
//     warm-up t ≤ tinit is exactly tinit steps.
//   - LoRA+: the trial's weight_decay applies to A and B, B's decoupled decay
//     at its λ× learning rate as torch's AdamW param groups do; HF's
//     create_loraplus_optimizer uses its own loraplus_weight_decay (default
//     0) and ignores the optimiser's.
//   - LoRA-GA follows the paper and the authors' code rather than HF PEFT's
//     lora_ga: exact SVD of the gradient estimate (HF: svd_lowrank, q = 4r),
//     A = V[:, :r]ᵀ and B = U[:, r:2r] both scaled by out^{1/4}/√γ (HF puts
//     S[r:2r] into B and scales B only).
//   - LoRA-FA: HF's LoraFAOptimizer preconditions B's clipped gradient,
//     g_B ← (1/s²)·g_B·(AAᵀ + 1e-8·I)⁻¹, inside an Adam of its own (ε added
//     to √v before bias correction, decay after the update); here the same
//     preconditioning (BeforeStep, after clipping) feeds the trial's AdamW,
//     torch's AdamW, so LoRA-FA compares with the other methods under one
//     optimiser.
//   - LoRA-XS follows the authors' code, ΔW = s·U_r·R·Σ_rV_rᵀ (not in HF
//     PEFT; the paper's text writes Σ_r on the other side of R).
package methods
