package nn

import "math"

// NormEps is the ε of LayerNorm and RMSNorm (torch's LayerNorm default).
const NormEps = 1e-5

// LayerNorm normalises each row of x to zero mean and unit variance (biased
// variance, ε = NormEps) and applies y = x̂·gamma + beta. gamma and beta
// have length Cols; beta may be nil.
func (g *Graph) LayerNorm(x, gamma, beta *Tensor) *Tensor {
	return g.LayerNormEps(x, gamma, beta, NormEps)
}

// LayerNormEps is LayerNorm with its own ε (a checkpoint's
// layer_norm_epsilon).
func (g *Graph) LayerNormEps(x, gamma, beta *Tensor, eps float64) *Tensor {
	r, c := x.Rows(), x.Cols()
	mustVec("LayerNorm", gamma, c, "gamma")
	if beta != nil {
		mustVec("LayerNorm", beta, c, "beta")
	}
	rec := g.needs(x, gamma, beta)
	y := g.out(rec, x.Shape...)
	var xhat, rstd []float32
	if rec {
		xhat, rstd = g.buf(len(x.Data)), g.buf(r)
	}
	for i := range r {
		xr, yr := x.Data[i*c:(i+1)*c], y.Data[i*c:(i+1)*c]
		mu := sum(xr) / float64(c)
		var v float64
		for _, e := range xr {
			d := float64(e) - mu
			v += d * d
		}
		rs := 1 / math.Sqrt(v/float64(c)+eps)
		for j, e := range xr {
			h := float32((float64(e) - mu) * rs)
			if rec {
				xhat[i*c+j] = h
			}
			o := h * gamma.Data[j]
			if beta != nil {
				o += beta.Data[j]
			}
			yr[j] = o
		}
		if rec {
			rstd[i] = float32(rs)
		}
	}
	if rec {
		n := g.record(backLayerNorm, y)
		n.a, n.b, n.c, n.aux, n.aux2 = x, gamma, beta, xhat, rstd
	}
	return y
}

func backLayerNorm(g *Graph, n *node) {
	x, gamma, beta := n.a, n.b, n.c
	c := x.Cols()
	dh := g.scratch32(c)
	for i, rs := range n.aux2 {
		dy, h := n.out.Grad[i*c:(i+1)*c], n.aux[i*c:(i+1)*c]
		if gamma.Grad != nil {
			mulAdd(gamma.Grad, dy, h)
		}
		if beta != nil && beta.Grad != nil {
			addTo(dy, beta.Grad)
		}
		if x.Grad == nil {
			continue
		}
		for j := range dh {
			dh[j] = dy[j] * gamma.Data[j]
		}
		m1 := float32(sum(dh) / float64(c))
		m2 := float32(dot(dh, h) / float64(c))
		gx := x.Grad[i*c : (i+1)*c]
		for j := range gx {
			gx[j] += rs * (dh[j] - m1 - h[j]*m2)
		}
	}
}

// RMSNorm scales each row of x by 1/√(mean(x²)+ε) (ε = NormEps) and then
// by gamma (length Cols).
func (g *Graph) RMSNorm(x, gamma *Tensor) *Tensor { return g.RMSNormEps(x, gamma, NormEps) }

// RMSNormEps is RMSNorm with its own ε (a checkpoint's rms_norm_eps).
func (g *Graph) RMSNormEps(x, gamma *Tensor, eps float64) *Tensor {
	r, c := x.Rows(), x.Cols()
	mustVec("RMSNorm", gamma, c, "gamma")
	rec := g.needs(x, gamma)
	y := g.out(rec, x.Shape...)
	var rstd []float32
	if rec {
		rstd = g.buf(r)
	}
	for i := range r {
		xr, yr := x.Data[i*c:(i+1)*c], y.Data[i*c:(i+1)*c]
		rs := float32(1 / math.Sqrt(dot(xr, xr)/float64(c)+eps))
		for j, e := range xr {
			yr[j] = e * rs * gamma.Data[j]
		}
		if rec {
			rstd[i] = rs
		}
	}
	if rec {
		n := g.record(backRMSNorm, y)
		n.a, n.b, n.aux = x, gamma, rstd
	}
	return y
}

func backRMSNorm(g *Graph, n *node) {
	x, gamma := n.a, n.b
	c := x.Cols()
	dh := g.scratch32(c)
	for i, rs := range n.aux {
		dy, xr := n.out.Grad[i*c:(i+1)*c], x.Data[i*c:(i+1)*c]
		if gamma.Grad != nil {
			for j := range dy {
				gamma.Grad[j] += dy[j] * xr[j] * rs
			}
		}
		if x.Grad == nil {
			continue
		}
		for j := range dh {
			dh[j] = dy[j] * gamma.Data[j]
		}
		// ĥ = x·rs; dx = rs·(dĥ − ĥ·mean(dĥ⊙ĥ))
		m := float32(dot(dh, xr)/float64(c)) * rs
		gx := x.Grad[i*c : (i+1)*c]
		for j := range gx {
			gx[j] += rs * (dh[j] - xr[j]*rs*m)
		}
	}
}
