package train_test

import "testing"

// TestProjectedOptimizerStateBytes: for the optimiser-level methods
// (methods.OptimizerMaker: GaLore, Fira, Flora) the trial's
// optimizer_state_bytes is the method's own optimiser's state
// (nn.StateSizer), not AdamW's: on teacher-shift's MLP (fc1 64×16, fc2
// 64×64, head 5×64, all targeted, r = 4) it is the projected state the
// method's formula gives, plus the biases' AdamW moments, and below full
// fine-tuning's AdamW (8 bytes per trainable element).
func TestProjectedOptimizerStateBytes(t *testing.T) {
	const r = 4
	shapes := [][2]int{{64, 16}, {64, 64}, {5, 64}}
	perWeight := map[string]func(m, n int) int{
		// P (m×r if m < n, else r×n) and the moments of R (r×n or m×r).
		"galore": func(m, n int) int {
			if m < n {
				return 4 * (m*r + 2*r*n)
			}
			return 4 * (r*n + 2*m*r)
		},
		// GaLore's plus the limiter's norm.
		"fira": func(m, n int) int {
			if m < n {
				return 4*(m*r+2*r*n) + 4
			}
			return 4*(r*n+2*m*r) + 4
		},
		// the compressed first moment and the full second moment; r ≥
		// min(m, n) (head: 5×64 at r = 4 is compressed) is AdamW's.
		"flora": func(m, n int) int {
			if r >= min(m, n) {
				return 8 * m * n
			}
			return 4 * (r*max(m, n) + m*n)
		},
	}
	for _, method := range []string{"galore", "fira", "flora"} {
		t.Run(method, func(t *testing.T) {
			rec, _, err := run(t, teacherShift(method, map[string]any{"rank": r}))
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, s := range shapes {
				want += perWeight[method](s[0], s[1]) + 8*s[0] // + the bias's AdamW moments
			}
			got := rec.summary["optimizer_state_bytes"]
			if got != float64(want) {
				t.Errorf("optimizer_state_bytes = %v, want %d", got, want)
			}
			if adam := 8 * rec.summary["trainable_params"]; !(got < adam) {
				t.Errorf("optimizer_state_bytes = %v, not below AdamW's %v", got, adam)
			}
		})
	}
}
