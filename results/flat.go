package results

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FlatColumn is one column of a FlatTable.
type FlatColumn struct {
	Name string
	// Type is TypeInt64, TypeDouble, TypeString, TypeBool, TypeJSON (a
	// string of JSON text) or TypeTimestamp.
	Type string
}

// FlatTable is trials.parquet as one flat table of scalars, for formats
// without nesting (CSV, JSON lines): the fixed columns in the file's
// order, with intruders spread into one int64 column per threshold
// ("intruders_<ε>", ε as %g) and extra into one double column per key
// ("extra_<key>"), then the hyperparameter columns. Cells are nil (null),
// int64, float64, string, bool or time.Time (UTC), by the column's type.
type FlatTable struct {
	Columns []FlatColumn
	Rows    [][]any
}

// Flatten returns the flat table of rows, its hyperparameter columns
// derived from their Configs exactly as Compact derives trials.parquet's.
func Flatten(rows []TrialRow) *FlatTable {
	recs := make([]trialRecord, len(rows))
	configs := make([]string, len(rows))
	var eps []float64
	var extra []string
	for i := range rows {
		recs[i] = toTrialRecord(&rows[i])
		configs[i] = rows[i].Config
		for _, c := range rows[i].Intruders {
			if !slices.Contains(eps, c.Epsilon) {
				eps = append(eps, c.Epsilon)
			}
		}
		for k := range rows[i].Extra {
			if !slices.Contains(extra, k) {
				extra = append(extra, k)
			}
		}
	}
	slices.Sort(eps)
	slices.Sort(extra)

	t := &FlatTable{Rows: make([][]any, len(rows))}
	// One getter per column of each record, in trialRecord's order.
	var getters []func(*trialRecord) any
	rt := reflect.TypeOf(trialRecord{})
	for fi := range rt.NumField() {
		f := rt.Field(fi)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		switch name {
		case "intruders":
			for _, e := range eps {
				t.Columns = append(t.Columns, FlatColumn{"intruders_" + strconv.FormatFloat(e, 'g', -1, 64), TypeInt64})
				getters = append(getters, func(r *trialRecord) any {
					for _, c := range r.Intruders {
						if c.Epsilon == e {
							return c.Count
						}
					}
					return nil
				})
			}
			continue
		case "extra":
			for _, k := range extra {
				t.Columns = append(t.Columns, FlatColumn{"extra_" + k, TypeDouble})
				getters = append(getters, func(r *trialRecord) any {
					if v, ok := r.Extra[k]; ok {
						return v
					}
					return nil
				})
			}
			continue
		}
		typ := f.Type
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		var ct string
		switch {
		case typ == reflect.TypeOf(time.Time{}):
			ct = TypeTimestamp
		case typ.Kind() == reflect.Int64:
			ct = TypeInt64
		case typ.Kind() == reflect.Float64:
			ct = TypeDouble
		case typ.Kind() == reflect.String:
			ct = TypeString
		case typ.Kind() == reflect.Bool:
			ct = TypeBool
		default:
			panic("results: Flatten: no flat form for column " + name + " of type " + f.Type.String())
		}
		t.Columns = append(t.Columns, FlatColumn{name, ct})
		getters = append(getters, func(r *trialRecord) any {
			v := reflect.ValueOf(r).Elem().Field(fi)
			if v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return nil
				}
				v = v.Elem()
			}
			if tm, ok := v.Interface().(time.Time); ok {
				return tm.UTC()
			}
			return v.Interface()
		})
	}

	params, vals := paramTable(configs)
	taken := map[string]bool{}
	for _, c := range t.Columns {
		taken[c.Name] = true
	}
	for _, p := range params {
		name := p.Name
		for n := 2; taken[name]; n++ { // an expanded extra_ or intruders_ name
			name = p.Name + "_" + strconv.Itoa(n)
		}
		taken[name] = true
		t.Columns = append(t.Columns, FlatColumn{name, p.Type})
	}
	for i := range recs {
		row := make([]any, 0, len(t.Columns))
		for _, g := range getters {
			row = append(row, g(&recs[i]))
		}
		t.Rows[i] = append(row, vals[i]...)
	}
	return t
}
