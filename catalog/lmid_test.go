package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"peftbench/catalog"
	"peftbench/lmfolder"
	"peftbench/sweeps"
)

// TestLMTrialID: a sweep on the lm task gets the same trial IDs from two
// copies of the checkpoint and data at different paths, and other IDs
// when one byte of the weights changes; the trials keep their paths.
// Planted bugs caught: the ID hashing the paths (copies differ), the
// identity hook not wired (sweeps ignoring TaskIdentity), the digest
// skipping the weights.
func TestLMTrialID(t *testing.T) {
	root := t.TempDir()
	write := func(name string) string {
		dir := filepath.Join(root, name)
		if _, _, err := lmfolder.Write(filepath.Join(dir, "model"), lmfolder.Spec{Family: "gpt2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := lmfolder.WriteData(dir, 0); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	ids := func(dir string) []string {
		t.Helper()
		src := "seeds = 2\n[grid]\nmethod = [\"lora\"]\nrank = [2]\ntask = [\"lm\"]\n[defaults]\nsteps = 2\ntargets = [\"all-linear\"]\n" +
			"[task.lm]\nmodel = \"" + dir + "/model\"\ntrain = \"" + dir + "/train.jsonl\"\neval = \"" + dir + "/eval.jsonl\"\nretain = \"" + dir + "/retain.jsonl\"\nseq_len = 16\n"
		plan, err := sweeps.Parse("x.toml", []byte(src), catalog.Registries{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tr := range plan.Trials {
			if tr.TaskOptions["model"] != dir+"/model" {
				t.Errorf("trial keeps model %v, want the path", tr.TaskOptions["model"])
			}
			if d, _ := tr.TaskIdentity["model"].(string); !strings.HasPrefix(d, "sha256:") {
				t.Errorf("identity model %q, want a digest", d)
			}
			out = append(out, tr.ID)
		}
		return out
	}
	a, b := write("a"), write("b")
	ia, ib := ids(a), ids(b)
	if strings.Join(ia, ",") != strings.Join(ib, ",") {
		t.Errorf("identical copies: IDs %v and %v", ia, ib)
	}
	w := filepath.Join(b, "model", "model.safetensors")
	data, _ := os.ReadFile(w)
	data[len(data)-1] ^= 1
	os.WriteFile(w, data, 0o644)
	if ic := ids(b); ic[0] == ia[0] {
		t.Errorf("one weight byte changed: ID %s unchanged", ic[0])
	}
}
