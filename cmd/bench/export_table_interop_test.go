package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"peftbench/results"
)

// NodeModulesEnv names a node_modules folder holding the npm package
// @duckdb/node-api, for TestExportTableInterop (.ci/run installs it with
// npm install --prefix .cache/npm @duckdb/node-api). Unset, the test looks
// in the repository's .cache/npm/node_modules.
const NodeModulesEnv = "PEFTBENCH_NODE_MODULES"

// duckdbQueries reads trials.parquet, the CSV export and the JSON lines
// export with DuckDB and groups each by lr, the way a user would, printing
// one JSON object: for each source, [lr, avg(target_metric), count(*)]
// rows ordered by lr, and the DuckDB types of lr, alpha and rank and the
// null counts of rank and error in the Parquet file.
const duckdbQueries = `
const { DuckDBInstance } = require(process.env.DUCKDB_NODE_API);
const [parquet, csv, jsonl] = process.argv.slice(2);
const group = (from) => "SELECT lr, avg(target_metric) AS m, count(*) AS n FROM " + from + " GROUP BY lr ORDER BY lr";
(async () => {
  const db = await DuckDBInstance.create(":memory:");
  const con = await db.connect();
  const rows = async (sql) => (await con.runAndReadAll(sql)).getRowsJson();
  const out = {
    parquet: await rows(group("'" + parquet + "'")),
    csv: await rows(group("read_csv('" + csv + "')")),
    jsonl: await rows(group("read_json('" + jsonl + "', format = 'newline_delimited')")),
    types: await rows("SELECT typeof(lr), typeof(alpha), typeof(rank), typeof(batch) FROM '" + parquet + "' LIMIT 1"),
    nulls: await rows("SELECT count(*) FILTER (WHERE rank IS NULL), count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE alpha IS NULL) FROM '" + parquet + "'"),
  };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// pythonCSV groups the CSV export by lr with Python's csv module (and
// pandas, where installed), printing {"csv": [[lr, mean, n], …], "pandas":
// […] or null}; the mean skips empty (null) cells as SQL's avg does.
const pythonCSV = `
import csv, json, sys
groups = {}
with open(sys.argv[1], newline="") as f:
    for row in csv.DictReader(f):
        g = groups.setdefault(float(row["lr"]), [0.0, 0, 0])
        g[2] += 1
        if row["target_metric"] != "":
            g[0] += float(row["target_metric"]); g[1] += 1
out = {"csv": [[lr, s / n if n else None, c] for lr, (s, n, c) in sorted(groups.items())], "pandas": None}
try:
    import pandas as pd
except ImportError:
    pass
else:
    df = pd.read_csv(sys.argv[1])
    g = df.groupby("lr")["target_metric"]
    out["pandas"] = [[float(lr), float(m), int(n)] for (lr, m), n in zip(g.mean().items(), g.size())]
print(json.dumps(out))
`

// group is one lr's mean target_metric (over trials reporting one) and
// its trial count.
type group struct {
	LR, Mean float64
	N        int
}

// goGroups is Go's own grouping of rows by lr.
func goGroups(t *testing.T, rows []results.TrialRow) []group {
	t.Helper()
	type acc struct {
		sum  float64
		n, c int
	}
	by := map[float64]*acc{}
	for _, r := range rows {
		lr, ok := r.Params["lr"].(float64)
		if !ok {
			t.Fatalf("%s: Params[lr] = %#v", r.TrialID, r.Params["lr"])
		}
		a := by[lr]
		if a == nil {
			a = &acc{}
			by[lr] = a
		}
		a.c++
		if !math.IsNaN(r.TargetMetric) {
			a.sum += r.TargetMetric
			a.n++
		}
	}
	var out []group
	for lr, a := range by {
		out = append(out, group{lr, a.sum / float64(a.n), a.c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LR < out[j].LR })
	return out
}

// parseGroups reads [lr, mean, n] triples, numbers as JSON numbers or
// strings (DuckDB's JSON rows write BIGINT as strings).
func parseGroups(t *testing.T, what string, raw json.RawMessage) []group {
	t.Helper()
	var cells [][]any
	if err := json.Unmarshal(raw, &cells); err != nil {
		t.Fatalf("%s: %v in %s", what, err, raw)
	}
	num := func(v any) float64 {
		switch x := v.(type) {
		case float64:
			return x
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err == nil {
				return f
			}
		}
		t.Fatalf("%s: %#v is not a number (in %s)", what, v, raw)
		return 0
	}
	var out []group
	for _, c := range cells {
		if len(c) != 3 {
			t.Fatalf("%s: row %v", what, c)
		}
		out = append(out, group{num(c[0]), num(c[1]), int(num(c[2]))})
	}
	return out
}

func sameGroups(t *testing.T, what string, got, want []group) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d lr groups %v, Go has %d %v", what, len(got), got, len(want), want)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.LR != w.LR || g.N != w.N || math.Abs(g.Mean-w.Mean) > 1e-12 {
			t.Errorf("%s: group %d = %+v, Go has %+v", what, i, g, w)
		}
	}
}

// nodeModules returns the node_modules folder holding @duckdb/node-api, or
// skips the test saying how to get one. An explicitly named folder that
// lacks the package is a failure, not a skip: CI asked for the check.
func nodeModules(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the DuckDB check of bench export-table and trials.parquet is skipped")
	}
	dir, explicit := os.LookupEnv(NodeModulesEnv)
	if !explicit {
		dir = filepath.Join("..", "..", ".cache", "npm", "node_modules")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(abs, "@duckdb", "node-api", "package.json")); err != nil {
		if explicit {
			t.Fatalf("$%s = %s has no @duckdb/node-api: %v", NodeModulesEnv, dir, err)
		}
		t.Skipf("no @duckdb/node-api in %s: run npm install --prefix .cache/npm @duckdb/node-api, or set $%s to a node_modules folder holding it",
			dir, NodeModulesEnv)
	}
	return abs
}

// TestExportTableInterop is the check that users' tools read what bench
// writes: DuckDB (npm @duckdb/node-api) reads trials.parquet, the CSV and
// the JSON lines export, and Python's csv module (and pandas, where
// installed) the CSV, each grouping by lr directly; every answer must be
// Go's own grouping of the same trials. DuckDB must also see lr and alpha
// as DOUBLE, batch as BIGINT, and null rank, error and alpha where the
// trials have none.
func TestExportTableInterop(t *testing.T) {
	dir, rows := exportFixture(t)
	read, err := results.ReadTrials(filepath.Join(dir, results.TrialsFile))
	if err != nil {
		t.Fatal(err)
	}
	want := goGroups(t, read)
	if len(want) != 2 || len(rows) != 5 {
		t.Fatalf("fixture: %d lr groups of %d trials, want 2 of 5", len(want), len(rows))
	}
	out := t.TempDir()
	csvPath, jsonlPath := filepath.Join(out, "trials.csv"), filepath.Join(out, "trials.jsonl")
	for _, c := range []struct{ format, path string }{{"csv", csvPath}, {"jsonl", jsonlPath}} {
		if err := runExportTable([]string{dir, "--format", c.format, "--out", c.path}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("python", func(t *testing.T) {
		py := "/usr/bin/python3"
		if _, err := os.Stat(py); err != nil {
			t.Skip("no /usr/bin/python3: the Python csv check is skipped")
		}
		cmd := exec.Command(py, "-c", pythonCSV, csvPath)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, stderr.String())
		}
		var got struct{ CSV, Pandas json.RawMessage }
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("python printed %s: %v", b, err)
		}
		sameGroups(t, "python csv", parseGroups(t, "python csv", got.CSV), want)
		if string(got.Pandas) == "null" {
			t.Log("pandas is not installed: checked Python's csv module only")
		} else {
			sameGroups(t, "pandas", parseGroups(t, "pandas", got.Pandas), want)
		}
	})

	t.Run("duckdb", func(t *testing.T) {
		modules := nodeModules(t)
		script := filepath.Join(out, "query.cjs")
		if err := os.WriteFile(script, []byte(duckdbQueries), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("node", script, filepath.Join(dir, results.TrialsFile), csvPath, jsonlPath)
		cmd.Env = append(os.Environ(), "DUCKDB_NODE_API="+filepath.Join(modules, "@duckdb", "node-api"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("node: %v\n%s", err, stderr.String())
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("node printed %s: %v", b, err)
		}
		for _, src := range []string{"parquet", "csv", "jsonl"} {
			sameGroups(t, "duckdb "+src, parseGroups(t, "duckdb "+src, got[src]), want)
		}
		var types, nulls [][]any
		if err := json.Unmarshal(got["types"], &types); err != nil || len(types) != 1 {
			t.Fatalf("types: %s (%v)", got["types"], err)
		}
		if w := []any{"DOUBLE", "DOUBLE", "BIGINT", "BIGINT"}; !equalAny(types[0], w) {
			t.Errorf("DuckDB types of lr, alpha, rank, batch: %v, want %v", types[0], w)
		}
		if err := json.Unmarshal(got["nulls"], &nulls); err != nil || len(nulls) != 1 {
			t.Fatalf("nulls: %s (%v)", got["nulls"], err)
		}
		// One rank-less trial (full), four ok trials without an error, one
		// trial (full) without alpha.
		if w := []any{"1", "4", "1"}; !equalAny(nulls[0], w) {
			t.Errorf("null rank, error, alpha counts: %v, want %v", nulls[0], w)
		}
	})
}

// equalAny compares JSON cells as text.
func equalAny(got, want []any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if !bytes.Equal(g, w) {
			return false
		}
	}
	return true
}
