package sweeps

import (
	"strings"
	"testing"
)

// TestLayerCheckAsksCatalog: the rank check is the catalog's
// (CheckMethodLayers), not a rule of this package: the fake's vera takes a
// rank above min(out, in), its lora does not.
func TestLayerCheckAsksCatalog(t *testing.T) {
	for _, c := range []struct {
		method, want string
	}{
		{"vera", ""},
		{"lora", `x.toml:4:9: grid.rank[0]: method "lora" on task "mlp": option rank: 128 exceeds min(out, in) = 64 of layer fc2 (64×64)`},
	} {
		src := "seeds = 3\n[grid]\nmethod = [\"" + c.method + "\"]\nrank = [128]\ntask = [\"mlp\"]\n[defaults]\ntargets = [\"fc2\"]\n"
		p, err := Parse("x.toml", []byte(src), fakeCatalog{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.method, err)
		case c.want == "" && len(p.Trials) != 3:
			t.Errorf("%s: %d trials, want 3", c.method, len(p.Trials))
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want it to contain %q", c.method, err, c.want)
		}
	}
}
