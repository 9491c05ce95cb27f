package sweeps

import (
	"strings"
	"testing"
)

// TestMitigateIntruders: [analysis] mitigate_intruders adds, after each
// plain trial (whose ID stays what it was without the setting), one twin
// per lambda with the mitigation set and a different ID; bad values, and
// an external trainer, are refused at the key.
func TestMitigateIntruders(t *testing.T) {
	const base = "seeds = 2\n[grid]\nmethod = [\"lora\", \"full\"]\nrank = [4]\ntask = [\"mlp\"]\n"
	plain, err := Parse("x.toml", []byte(base), fakeCatalog{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("x.toml", []byte(base+"[analysis]\nspectra = true\nmitigate_intruders = {lambda = [0.5, 0.75], top_k = 5}\n"), fakeCatalog{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Trials), 3*len(plain.Trials); got != want {
		t.Fatalf("%d trials, want %d", got, want)
	}
	seen := map[string]bool{}
	for i, tr := range p.Trials {
		if seen[tr.ID] || tr.Index != i {
			t.Errorf("trial %d: ID %s repeated or index %d", i, tr.ID, tr.Index)
		}
		seen[tr.ID] = true
		pl := plain.Trials[i/3]
		switch m := tr.MitigateIntruders; i % 3 {
		case 0:
			if m != nil || tr.ID != pl.ID {
				t.Errorf("trial %d: mitigation %v, ID %s; want the plain trial %s", i, m, tr.ID, pl.ID)
			}
		default:
			want := IntruderMitigation{Lambda: []float64{0.5, 0.75}[i%3-1], Epsilon: 0.5, TopK: 5}
			if m == nil || *m != want || tr.ID == pl.ID {
				t.Errorf("trial %d: mitigation %+v, want %+v with an ID other than %s", i, m, want, pl.ID)
			}
			if id, _ := TrialID(tr, p.Trainer); id != tr.ID {
				t.Errorf("trial %d: TrialID %s, recorded %s", i, id, tr.ID)
			}
		}
	}
	for _, c := range []struct{ src, want string }{
		{"mitigate_intruders = {lambda = 1.5}", "analysis.mitigate_intruders.lambda: must be in [0, 1]"},
		{"mitigate_intruders = {lambda = [0.5, -1]}", "analysis.mitigate_intruders.lambda[1]: must be in [0, 1]"},
		{"mitigate_intruders = {threshold_epsilon = 0.5}", "missing lambda"},
		{"mitigate_intruders = {lambda = 0.5, threshold_epsilon = 0}", "threshold_epsilon: must be in (0, 1]"},
		{"mitigate_intruders = {lambda = 0.5, top_k = 0}", "top_k: must be at least 1"},
		{"mitigate_intruders = {lambda = 0.5, eps = 0.3}", "unknown key"},
		{"mitigate_intruders = 0.75", "want a table"},
	} {
		_, err := Parse("x.toml", []byte(base+"[analysis]\n"+c.src+"\n"), fakeCatalog{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.src, err, c.want)
		}
	}
	_, err = Parse("x.toml", []byte(base+"[trainer]\nkind = \"command\"\ncommand = [\"t\"]\n[analysis]\nmitigate_intruders = {lambda = 0.75}\n"), fakeCatalog{})
	if err == nil || !strings.Contains(err.Error(), "needs the builtin trainer") {
		t.Errorf("external trainer: error %v", err)
	}
}
