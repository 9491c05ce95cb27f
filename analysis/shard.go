package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"peftbench/results"
	"peftbench/safetensors"
)

// Layer is one targeted matrix of a trial: its base and tuned (merged)
// weights, row-major Rows×Cols (Out×In).
type Layer struct {
	Name        string
	Rows, Cols  int
	Base, Tuned []float32
}

// Tensor name suffixes of a trial's weights file (train.WeightsFile).
const (
	baseSuffix  = ".base"
	tunedSuffix = ".tuned"
)

// ReadLayers reads the "<layer>.base" and "<layer>.tuned" tensor pairs of a
// weights file, ordered by layer name. A layer missing either half, or with
// halves of different shapes, is an error.
func ReadLayers(path string) ([]Layer, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("analysis: %w", err)
	}
	defer f.Close()
	names := f.Names()
	var layers []Layer
	for _, n := range names {
		name, ok := strings.CutSuffix(n, baseSuffix)
		if !ok {
			if _, tuned := strings.CutSuffix(n, tunedSuffix); !tuned {
				return nil, fmt.Errorf("analysis: %s: tensor %q is neither <layer>%s nor <layer>%s", path, n, baseSuffix, tunedSuffix)
			}
			if !slices.Contains(names, strings.TrimSuffix(n, tunedSuffix)+baseSuffix) {
				return nil, fmt.Errorf("analysis: %s: tensor %q has no %s pair", path, n, baseSuffix)
			}
			continue
		}
		if !slices.Contains(names, name+tunedSuffix) {
			return nil, fmt.Errorf("analysis: %s: layer %q has no %s tensor", path, name, tunedSuffix)
		}
		base, bshape, err := f.Tensor(name + baseSuffix)
		if err != nil {
			return nil, fmt.Errorf("analysis: %w", err)
		}
		tuned, tshape, err := f.Tensor(name + tunedSuffix)
		if err != nil {
			return nil, fmt.Errorf("analysis: %w", err)
		}
		if len(bshape) != 2 || !slices.Equal(bshape, tshape) {
			return nil, fmt.Errorf("analysis: %s: layer %q: base shape %v, tuned shape %v; want equal 2-D shapes", path, name, bshape, tshape)
		}
		layers = append(layers, Layer{Name: name, Rows: bshape[0], Cols: bshape[1], Base: base, Tuned: tuned})
	}
	slices.SortFunc(layers, func(a, b Layer) int { return strings.Compare(a.Name, b.Name) })
	return layers, nil
}

// ShardOptions configures FillShard.
type ShardOptions struct {
	// Cache holds the base decompositions; share one across the trials of
	// a sweep (and across sweeps, with a directory) so each base matrix is
	// decomposed once per base model. Nil uses a fresh in-memory cache.
	Cache *BaseCache
	Eps   []float64 // intruder thresholds, in the order of the flags; default {0.5}
	TopK  int       // tuned directions checked; default 10 (the paper's)
}

// FillShard analyses a trial's targeted layers and fills its shard: one
// spectra row per (layer, singular direction) over all min(Rows, Cols)
// directions, with σ of W0 and of the tuned W at each index, and MaxCos and
// the intruder flags for the top-k tuned directions (MaxCos NaN and flags
// false beyond them); and the trial's summary columns:
//
//   - Intruders: intruder dimensions per ε summed over the layers (the
//     quantity Shuttleworth et al. report per model);
//   - EffectiveRank: the effective rank of ΔW = W − W0, averaged over the
//     layers (the update's rank is what the papers discuss; a mean keeps
//     models with different numbers of targeted layers comparable);
//   - EnergyRank90: the rank holding 90% of ΔW's spectral energy,
//     averaged over the layers likewise.
//
// The result is a function of the weights and options only. A layer whose
// base or tuned tensor holds a NaN or an infinity fails the analysis with
// an error naming the layer, the tensor and the entry (wrapping
// ErrNonFinite). FillShard looks at ctx between layers and inside each
// layer's decompositions, and returns ctx's error, leaving the shard as it
// was, soon after ctx is done.
func FillShard(ctx context.Context, s *results.Shard, layers []Layer, opt ShardOptions) error {
	cache := opt.Cache
	if cache == nil {
		cache = NewBaseCache("")
	}
	eps := opt.Eps
	if len(eps) == 0 {
		eps = []float64{0.5}
	}
	topK := opt.TopK
	if topK == 0 {
		topK = 10
	}
	counts := make([]int64, len(eps))
	var rows []results.SpectrumRow
	var effRank, energyRank float64
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.Rows <= 0 || l.Cols <= 0 || len(l.Base) != l.Rows*l.Cols || len(l.Tuned) != l.Rows*l.Cols {
			return fmt.Errorf("analysis: layer %q: %d base and %d tuned values for %d×%d", l.Name, len(l.Base), len(l.Tuned), l.Rows, l.Cols)
		}
		if err := checkFinite32(fmt.Sprintf("layer %q: tensor %q", l.Name, l.Name+baseSuffix), l.Base, l.Cols); err != nil {
			return err
		}
		if err := checkFinite32(fmt.Sprintf("layer %q: tensor %q", l.Name, l.Name+tunedSuffix), l.Tuned, l.Cols); err != nil {
			return err
		}
		w0, w := dense(l.Rows, l.Cols, l.Base), dense(l.Rows, l.Cols, l.Tuned)
		bs, err := cache.GetContext(ctx, w0)
		if err != nil {
			if isCtxErr(err) {
				return err
			}
			return fmt.Errorf("analysis: layer %q: %w", l.Name, err)
		}
		ls, err := AnalyzeLayerContext(ctx, bs, w0, w, IntruderOptions{K: topK, Eps: eps})
		if err != nil {
			if isCtxErr(err) {
				return err
			}
			return fmt.Errorf("analysis: layer %q: %w", l.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sig, err := SingularValues(w)
		if err != nil {
			return fmt.Errorf("analysis: layer %q: %w", l.Name, err)
		}
		for i := range sig {
			r := results.SpectrumRow{TrialID: s.Trial.TrialID, Layer: l.Name, Index: int64(i),
				SigmaBase: bs.Sigma[i], SigmaTuned: sig[i], MaxCos: math.NaN(), Intruder: make([]bool, len(eps))}
			if i < len(ls.Intruders.Dirs) {
				d := ls.Intruders.Dirs[i]
				r.MaxCos = d.MaxCos
				copy(r.Intruder, d.Intruder)
			}
			rows = append(rows, r)
		}
		for e, c := range ls.Intruders.Counts {
			counts[e] += int64(c)
		}
		effRank += ls.EffRankDelta
		energyRank += float64(ls.EnergyRank90)
	}
	s.Spectra = rows
	s.Trial.Intruders = nil
	if len(layers) == 0 {
		s.Trial.EffectiveRank, s.Trial.EnergyRank90 = math.NaN(), math.NaN()
		return nil
	}
	for e, th := range eps {
		s.Trial.Intruders = append(s.Trial.Intruders, results.IntruderCount{Epsilon: th, Count: counts[e]})
	}
	n := float64(len(layers))
	s.Trial.EffectiveRank = effRank / n
	s.Trial.EnergyRank90 = energyRank / n
	return nil
}

// dense widens a row-major float32 matrix to float64.
func dense(r, c int, v []float32) *mat.Dense {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return mat.NewDense(r, c, d)
}
