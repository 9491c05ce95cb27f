package sweeps

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDefaultTimeout: a trial of a sweep without [resources] timeout gets
// DefaultTimeoutBase + DefaultTimeoutPerStep × (steps × stages +
// pretrain_steps); a timeout in [resources] replaces it.
func TestDefaultTimeout(t *testing.T) {
	for _, c := range []struct {
		steps int
		opts  map[string]any
		want  time.Duration
	}{
		{500, nil, 10*time.Minute + 500*time.Second},
		{60, map[string]any{"pretrain_steps": int64(1500)}, 10*time.Minute + 1560*time.Second},
		{100, map[string]any{"stages": int64(3), "pretrain_steps": int64(300)}, 10*time.Minute + 600*time.Second},
		{100, map[string]any{"stages": float64(2)}, 10*time.Minute + 200*time.Second}, // a plan read back from JSON
		{0, map[string]any{"stages": "x"}, 10 * time.Minute},
	} {
		tr := Trial{TaskOptions: c.opts, Train: TrainConfig{Steps: c.steps}}
		if got := (Resources{}).TrialTimeout(tr); got != c.want {
			t.Errorf("%d steps, %v: timeout %v, want %v", c.steps, c.opts, got, c.want)
		}
		if got := (Resources{Timeout: time.Minute}).TrialTimeout(tr); got != time.Minute {
			t.Errorf("%d steps with timeout = \"1m\": timeout %v", c.steps, got)
		}
	}
	huge := Trial{Train: TrainConfig{Steps: 1 << 60}}
	if got := DefaultTimeout(huge); got < 100*365*24*time.Hour {
		t.Errorf("%d steps: timeout %v overflowed", huge.Train.Steps, got)
	}
}

// TestTimeoutNotInID: the timeout, set or default, is not part of a
// trial's identity.
func TestTimeoutNotInID(t *testing.T) {
	const src = `
seeds = [0, 1]
[grid]
method = ["lora", "full"]
rank = [4]
task = ["mlp"]
%s`
	base := mustParse(t, strings.Replace(src, "%s", "", 1))
	for _, res := range []string{"[resources]\ntimeout = \"90s\"\n", "[resources]\ntimeout = \"0s\"\n"} {
		p := mustParse(t, strings.Replace(src, "%s", res, 1))
		if !slices.Equal(ids(p), ids(base)) {
			t.Errorf("%q changed the trial IDs", res)
		}
	}
}
