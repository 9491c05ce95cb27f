"""Planted-mutation check (issue 15): applies each mutation alone to a copy
of the tree, runs the methods and train tests, and prints which tests
failed. A mutation no test catches is a gap in the tests.

Usage: git worktree add /tmp/mut HEAD && python3 ci/mutate.py /tmp/mut [NAME...]
(about 40 s a mutation on 2 cores). The patterns are the code as it is; when
the code moves, a mutation reports "pattern not found" and needs updating."""
import os, re, subprocess, sys
tree = sys.argv[1]
MUTS = {
 "VeRA projection scale ×√6": ("methods/vera.go",
   "bound := math.Sqrt(6 / float64(t.Shape[1]))",
   "bound := math.Sqrt(6) * math.Sqrt(6/float64(t.Shape[1]))"),
 "LoRA-XS Σ on the other side": ("methods/loraxs.go",
   "m.P.Data[i*r+p] = float32(u.At(i, p))\n", "m.P.Data[i*r+p] = float32(u.At(i, p) * s[p])\n",
   "m.Q.Data[p*l.In+j] = float32(s[p] * v.At(j, p))", "m.Q.Data[p*l.In+j] = float32(v.At(j, p))"),
 "LoRA-FA hook before clipping (order swapped)": ("train/train.go",
   "\t\tif cfg.GradClip > 0 {\n\t\t\tnn.ClipGradNorm(r.params, float32(cfg.GradClip))\n\t\t}\n\t\tif bs != nil {\n\t\t\tbs.BeforeStep(i, total)\n\t\t}\n",
   "\t\tif bs != nil {\n\t\t\tbs.BeforeStep(i, total)\n\t\t}\n\t\tif cfg.GradClip > 0 {\n\t\t\tnn.ClipGradNorm(r.params, float32(cfg.GradClip))\n\t\t}\n"),
 "LoRA-FA preconditioning before clipping in the methods' test loop": ("methods/conformance_test.go",
   "\tif clip > 0 {\n\t\tnn.ClipGradNorm(tr.params, clip)\n\t}\n\tif h, ok := tr.att.(BeforeStepper); ok {\n\t\th.BeforeStep(step, total)\n\t}\n",
   "\tif h, ok := tr.att.(BeforeStepper); ok {\n\t\th.BeforeStep(step, total)\n\t}\n\tif clip > 0 {\n\t\tnn.ClipGradNorm(tr.params, clip)\n\t}\n"),
 "LoRA-GA without its scale": ("methods/loraga.go",
   "c = math.Pow(float64(l.Out), 0.25) / math.Sqrt(at.o.Float(\"stable_gamma\"))", "c = math.Sqrt(1) // no scale"),
 "AdaLoRA keeps the least important ranks": ("methods/adalora.go",
   "return cmp.Compare(y.s, x.s)", "return cmp.Compare(x.s, y.s)"),
 "AdaLoRA orthogonality penalty ×10": ("methods/adalora.go",
   "return g.Scale(sum, w/float32(2*len(at.adapters)))", "return g.Scale(sum, 10*w/float32(2*len(at.adapters)))"),
 "AdaLoRA without the uncertainty term": ("methods/adalora.go",
   "return float64(e.ipt[i]) * float64(e.unc[i])", "return float64(e.ipt[i])"),
 "DoRA norm not detached": ("methods/dora.go",
   "\tinv := g.Zeros(l.Out)\n\td.rowNorms(l, inv.Data)\n\tfor i, v := range inv.Data {\n\t\tinv.Data[i] = 1 / v\n\t}\n\tscale := g.Mul(d.M, inv)",
   "\twp := g.Add(l.Weight, g.Scale(g.MatMul(d.B, d.A, false, false), d.Scale))\n\tscale := g.Mul(d.M, g.Exp(g.Scale(g.Log(g.RowNorm(wp)), -1)))"),
}
only = sys.argv[2:] 
for name, spec in MUTS.items():
    if only and not any(o in name for o in only):
        continue
    path = os.path.join(tree, spec[0])
    orig = open(path).read()
    s = orig
    for old, new in zip(spec[1::2], spec[2::2]):
        if old not in s:
            print(f"{name}: pattern not found in {spec[0]}: {old[:50]!r}", flush=True); s = None; break
        s = s.replace(old, new, 1)
    if s is None:
        continue
    open(path, "w").write(s)
    try:
        p = subprocess.run(["go", "test", "-count=1", "./methods", "./train"], cwd=tree, capture_output=True, text=True, timeout=900)
        failed = sorted(set(re.findall(r"--- FAIL: (\S+)", p.stdout + p.stderr)))
        build = "build failed" if "[build failed]" in p.stdout + p.stderr or "setup failed" in p.stdout else ""
        print(f"{name}: {'CAUGHT by ' + ', '.join(failed) if failed else ('NOT CAUGHT' if not build else build)}", flush=True)
        if build:
            print(p.stdout[-2000:], p.stderr[-2000:])
    finally:
        open(path, "w").write(orig)
