package analysis

import (
	"encoding/json"
	"math"
)

// finiteOrNil maps NaN and ±Inf, which encoding/json rejects, to null.
func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// MarshalJSON encodes NaN and infinite fields as null.
func (c Comparison) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseN    int      `json:"base_n"`
		CurN     int      `json:"cur_n"`
		BaseMed  *float64 `json:"base_median"`
		CurMed   *float64 `json:"cur_median"`
		Delta    *float64 `json:"delta"`
		P        *float64 `json:"p"`
		Verdict  Verdict  `json:"verdict"`
		Warnings []string `json:"warnings,omitempty"`
	}{c.BaseN, c.CurN, finiteOrNil(c.BaseMed), finiteOrNil(c.CurMed), finiteOrNil(c.Delta), finiteOrNil(c.P), c.Verdict, c.Warnings})
}

// MarshalJSON encodes NaN and infinite fields as null.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		N        int      `json:"n"`
		Mean     *float64 `json:"mean"`
		SD       *float64 `json:"sd"`
		CILo     *float64 `json:"ci_lo"`
		CIHi     *float64 `json:"ci_hi"`
		Warnings []string `json:"warnings,omitempty"`
	}{s.N, finiteOrNil(s.Mean), finiteOrNil(s.SD), finiteOrNil(s.CILo), finiteOrNil(s.CIHi), s.Warnings})
}

// MarshalJSON encodes a NaN R² (constant responses) as null.
func (f *Fit) MarshalJSON() ([]byte, error) {
	type plain Fit
	return json.Marshal(struct {
		*plain
		R2 *float64 `json:"r2"`
	}{(*plain)(f), finiteOrNil(f.R2)})
}
