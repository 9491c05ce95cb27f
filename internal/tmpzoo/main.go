// Throwaway: a markdown table of a zoo results folder (deleted after use).
package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"peftbench/results"
)

func main() {
	rows, err := results.ReadTrials(filepath.Join(os.Args[1], "trials.parquet"))
	if err != nil {
		panic(err)
	}
	type key struct{ task, method string }
	type agg struct {
		metric, forget, intr, wall []float64
		params                     int64
		rank                       int64
		bad                        int
	}
	m := map[key]*agg{}
	var tasks []string
	seenT := map[string]bool{}
	for _, r := range rows {
		k := key{r.Task, r.Method}
		if !seenT[r.Task] {
			seenT[r.Task] = true
			tasks = append(tasks, r.Task)
		}
		a := m[k]
		if a == nil {
			a = &agg{}
			m[k] = a
		}
		if r.Status != "ok" {
			a.bad++
			continue
		}
		a.params, a.rank = r.TrainableParams, r.Rank
		if !math.IsNaN(r.TargetMetric) {
			a.metric = append(a.metric, r.TargetMetric)
		}
		if !math.IsNaN(r.Forgetting) {
			a.forget = append(a.forget, r.Forgetting)
		}
		for _, in := range r.Intruders {
			if in.Epsilon == 0.5 {
				a.intr = append(a.intr, float64(in.Count))
			}
		}
		a.wall = append(a.wall, r.WallSeconds)
	}
	ms := func(v []float64) string {
		if len(v) == 0 {
			return "—"
		}
		var s, ss float64
		for _, x := range v {
			s += x
		}
		mu := s / float64(len(v))
		for _, x := range v {
			ss += (x - mu) * (x - mu)
		}
		sd := 0.0
		if len(v) > 1 {
			sd = math.Sqrt(ss / float64(len(v)-1))
		}
		return fmt.Sprintf("%.3f ± %.3f", mu, sd)
	}
	mean := func(v []float64) string {
		if len(v) == 0 {
			return "—"
		}
		var s float64
		for _, x := range v {
			s += x
		}
		return fmt.Sprintf("%.1f", s/float64(len(v)))
	}
	sort.Strings(tasks)
	for _, t := range tasks {
		fmt.Printf("\n**%s**\n\n| method | size | trainable | target metric | forgetting | intruders ε=0.5 | s/trial |\n|---|---|---|---|---|---|---|\n", t)
		var ks []key
		for k := range m {
			if k.task == t {
				ks = append(ks, k)
			}
		}
		sort.Slice(ks, func(i, j int) bool { return ks[i].method < ks[j].method })
		for _, k := range ks {
			a := m[k]
			size := "—"
			if a.rank > 0 {
				size = fmt.Sprint(a.rank)
			}
			bad := ""
			if a.bad > 0 {
				bad = fmt.Sprintf(" (%d not ok)", a.bad)
			}
			fmt.Printf("| %s%s | %s | %d | %s | %s | %s | %s |\n", k.method, bad, size, a.params, ms(a.metric), ms(a.forget), mean(a.intr), mean(a.wall))
		}
	}
}
