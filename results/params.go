package results

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
)

// The hyperparameter columns of trials.parquet are derived from each
// trial's Config (the canonical JSON of sweeps.Trial), so the table's
// schema depends on the sweep: Compact builds it from the trials it
// compacts. Each column's name, the Config key it comes from and its type
// are recorded in the file's key-value metadata under paramsMetaKey, so a
// reader tells them from the fixed columns without guessing.

// paramsMetaKey is the Parquet key-value metadata key listing the
// hyperparameter columns of a trials table (JSON array of paramColumn).
const paramsMetaKey = "peftbench.params"

// Param column types, as recorded in the metadata and in a FlatColumn.
const (
	TypeInt64  = "int64"
	TypeDouble = "double"
	TypeString = "string"
	TypeBool   = "bool"
	// TypeJSON is a string column holding JSON text: lists, objects, and
	// keys whose values have different kinds across trials.
	TypeJSON      = "json"
	TypeTimestamp = "timestamp"
)

// paramColumn is one hyperparameter column.
type paramColumn struct {
	Name string `json:"name"` // column name
	Path string `json:"path"` // Config key, e.g. "train.lr", "method_options.alpha"
	Type string `json:"type"` // TypeInt64, TypeDouble, TypeString, TypeBool or TypeJSON
}

// configIdentity are the Config keys that are fixed columns already.
var configIdentity = map[string]bool{
	"sweep": true, "trial_id": true, "index": true, "method": true,
	"rank": true, "task": true, "seed": true, "phase": true,
}

// trainOrder is the order of sweeps.TrainConfig's keys; its float keys are
// double columns even when every trial's value is integral (the JSON of
// 0.0 is 0). results_test checks both against sweeps.TrainConfig.
var (
	trainOrder  = []string{"steps", "batch", "lr", "optimizer", "momentum", "beta1", "beta2", "eps", "weight_decay", "schedule", "warmup", "grad_clip", "eval_every", "targets"}
	floatParams = map[string]bool{
		"train.lr": true, "train.momentum": true, "train.beta1": true, "train.beta2": true,
		"train.eps": true, "train.weight_decay": true, "train.grad_clip": true,
		"mitigate_intruders.threshold_epsilon": true,
	}
)

// fixedColumns are the names of trials.parquet's fixed columns.
var fixedColumns = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, f := range parquet.SchemaOf(trialRecord{}).Fields() {
		m[f.Name()] = true
	}
	return m
})

// configPhase is the Config key "phase", "" when absent or not a string.
func configPhase(config string) string {
	if !strings.Contains(config, `"phase"`) {
		return ""
	}
	var c struct {
		Phase string `json:"phase"`
	}
	if json.Unmarshal([]byte(config), &c) != nil {
		return ""
	}
	return c.Phase
}

// configEntry is one hyperparameter of one trial's Config.
type configEntry struct {
	section, key string // section "" for a top-level key
	raw          json.RawMessage
}

// path is the entry's dotted Config key.
func (e configEntry) path() string {
	if e.section == "" {
		return e.key
	}
	return e.section + "." + e.key
}

// configEntries flattens a trial's Config into its hyperparameters: the
// keys of its objects (train, method_options, task_options,
// mitigate_intruders, and any other), and its top-level scalars that are
// not fixed columns. A Config that is not a JSON object has none; the
// mitigation's lambda is the fixed column mitigate_lambda.
func configEntries(config string) []configEntry {
	var top map[string]json.RawMessage
	if json.Unmarshal([]byte(config), &top) != nil {
		return nil
	}
	var out []configEntry
	for k, raw := range top {
		if configIdentity[k] {
			continue
		}
		var obj map[string]json.RawMessage
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &obj) == nil {
			for sub, v := range obj {
				if k == "mitigate_intruders" && sub == "lambda" {
					continue
				}
				out = append(out, configEntry{k, sub, v})
			}
			continue
		}
		out = append(out, configEntry{"", k, raw})
	}
	return out
}

// sectionRank orders the hyperparameter columns: train keys first, then
// the method's options, the task's, the mitigation's, and the rest.
func sectionRank(section string) int {
	switch section {
	case "train":
		return 0
	case "method_options":
		return 1
	case "task_options":
		return 2
	case "mitigate_intruders":
		return 3
	case "":
		return 4
	}
	return 5
}

// columnName is the flat column name of a Config key; taken holds the
// names already in use (the fixed columns, and train's names for the
// method's options). A name that collides gets its section's prefix.
func columnName(section, key string, taken func(string) bool) string {
	var prefix string
	switch section {
	case "train":
		prefix = "train_"
	case "method_options":
		prefix = "method_"
	case "task_options":
		return "task_" + key
	case "mitigate_intruders":
		return "mitigate_" + key
	case "":
		prefix = "config_"
	default:
		return section + "_" + key
	}
	if taken(key) {
		return prefix + key
	}
	return key
}

// paramValue is a decoded Config value and its kind.
func paramValue(raw json.RawMessage) (v any, kind string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, ""
	}
	switch raw[0] {
	case 'n':
		return nil, ""
	case 't', 'f':
		return raw[0] == 't', TypeBool
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return string(raw), TypeJSON
		}
		return s, TypeString
	case '[', '{':
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return string(raw), TypeJSON
		}
		return buf.String(), TypeJSON
	}
	if !bytes.ContainsAny(raw, ".eE") {
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return n, TypeInt64
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return string(raw), TypeJSON
	}
	return f, TypeDouble
}

// paramTable derives the hyperparameter columns of the trials from their
// Configs, and each trial's values converted to its column's type (nil
// for a trial without the key). A column's type is the one kind of all its
// values; integers and floats together are double (as are sweeps'
// float-typed train keys); other mixes are JSON text. Equal Configs give
// equal columns, in a fixed order: train keys in sweeps.TrainConfig's
// order, then each section's keys sorted.
func paramTable(configs []string) ([]paramColumn, [][]any) {
	type key struct{ section, key string }
	type acc struct {
		kinds map[string]bool
		vals  []any
		raws  []json.RawMessage
	}
	cols := map[key]*acc{}
	for i, c := range configs {
		for _, e := range configEntries(c) {
			k := key{e.section, e.key}
			a := cols[k]
			if a == nil {
				a = &acc{kinds: map[string]bool{}, vals: make([]any, len(configs)), raws: make([]json.RawMessage, len(configs))}
				cols[k] = a
			}
			v, kind := paramValue(e.raw)
			if v == nil {
				continue
			}
			a.kinds[kind] = true
			a.vals[i], a.raws[i] = v, e.raw
		}
	}
	keys := make([]key, 0, len(cols))
	for k := range cols {
		keys = append(keys, k)
	}
	trainPos := func(k string) int {
		if i := slices.Index(trainOrder, k); i >= 0 {
			return i
		}
		return len(trainOrder)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(sectionRank(a.section), sectionRank(b.section)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.section, b.section); c != 0 {
			return c
		}
		if a.section == "train" {
			if c := cmp.Compare(trainPos(a.key), trainPos(b.key)); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.key, b.key)
	})

	fixed := fixedColumns()
	used := map[string]bool{}
	for _, k := range keys {
		if k.section == "train" {
			used[k.key] = true
		}
	}
	taken := func(name string) bool { return fixed[name] }
	takenByTrain := func(name string) bool { return fixed[name] || used[name] }
	names := map[string]bool{}
	out := make([]paramColumn, len(keys))
	vals := make([][]any, len(configs))
	for i := range vals {
		vals[i] = make([]any, len(keys))
	}
	for j, k := range keys {
		t := taken
		if k.section == "method_options" {
			t = takenByTrain
		}
		name := columnName(k.section, k.key, t)
		// A prefixed name may still collide (a task option named like a
		// method option's prefixed name): number it.
		for base, n := name, 2; fixed[name] || names[name]; n++ {
			name = base + "_" + strconv.Itoa(n)
		}
		names[name] = true
		a := cols[k]
		typ := columnType(a.kinds, floatParams[configEntry{section: k.section, key: k.key}.path()])
		out[j] = paramColumn{Name: name, Path: configEntry{section: k.section, key: k.key}.path(), Type: typ}
		for i, v := range a.vals {
			if v == nil {
				continue
			}
			vals[i][j] = convertParam(v, a.raws[i], typ)
		}
	}
	return out, vals
}

// columnType is the type of a column whose values have the given kinds.
func columnType(kinds map[string]bool, float bool) string {
	switch {
	case len(kinds) == 0:
		if float {
			return TypeDouble
		}
		return TypeString // every value null
	case len(kinds) == 1:
		for k := range kinds {
			if k == TypeInt64 && float {
				return TypeDouble
			}
			return k
		}
	case len(kinds) == 2 && kinds[TypeInt64] && kinds[TypeDouble]:
		return TypeDouble
	}
	return TypeJSON
}

// convertParam converts a decoded value to its column's type.
func convertParam(v any, raw json.RawMessage, typ string) any {
	switch typ {
	case TypeDouble:
		if n, ok := v.(int64); ok {
			return float64(n)
		}
	case TypeJSON:
		var buf bytes.Buffer
		if json.Compact(&buf, raw) == nil {
			return buf.String()
		}
		return string(raw)
	}
	return v
}

// paramNode is the Parquet node of a hyperparameter column: optional, of
// its type.
func paramNode(typ string) parquet.Node {
	switch typ {
	case TypeInt64:
		return parquet.Optional(parquet.Int(64))
	case TypeDouble:
		return parquet.Optional(parquet.Leaf(parquet.DoubleType))
	case TypeBool:
		return parquet.Optional(parquet.Leaf(parquet.BooleanType))
	}
	return parquet.Optional(parquet.String())
}

// paramParquetValue is v as a Parquet value of column col.
func paramParquetValue(v any, col int) parquet.Value {
	if v == nil {
		return parquet.Value{}.Level(0, 0, col)
	}
	switch x := v.(type) {
	case string:
		return parquet.ByteArrayValue([]byte(x)).Level(0, 1, col)
	}
	return parquet.ValueOf(v).Level(0, 1, col)
}

// orderedGroup is a Parquet group whose fields keep the given order
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	order map[string]int
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	slices.SortStableFunc(fields, func(a, b parquet.Field) int {
		return cmp.Compare(g.order[a.Name()], g.order[b.Name()])
	})
	return fields
}

// encodeTrials writes the trials table: the fixed columns of trialRecord,
// then one column per hyperparameter of the trials' Configs, listed in the
// file's metadata. Equal rows give equal bytes.
func encodeTrials(rows []TrialRow, codec parquet.WriterOption) ([]byte, error) {
	fixed := parquet.SchemaOf(trialRecord{})
	configs := make([]string, len(rows))
	for i := range rows {
		configs[i] = rows[i].Config
	}
	params, vals := paramTable(configs)

	group := parquet.Group{}
	order := map[string]int{}
	for i, f := range fixed.Fields() {
		group[f.Name()] = f
		order[f.Name()] = i
	}
	for j, p := range params {
		group[p.Name] = paramNode(p.Type)
		order[p.Name] = len(fixed.Fields()) + j
	}
	schema := parquet.NewSchema(fixed.Name(), orderedGroup{group, order})
	nFixed := len(fixed.Columns())
	if got := len(schema.Columns()); got != nFixed+len(params) {
		return nil, fmt.Errorf("results: trials schema has %d columns, want %d", got, nFixed+len(params))
	}
	meta, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	// The fixed columns go through parquet-go's buffer of trialRecord,
	// the path its generic writer takes (which, unlike Deconstruct, writes
	// the extra map's keys sorted); the hyperparameters are appended.
	recs := make([]trialRecord, len(rows))
	for i := range rows {
		recs[i] = toTrialRecord(&rows[i])
	}
	fb := parquet.NewGenericBuffer[trialRecord]()
	if _, err := fb.Write(recs); err != nil {
		return nil, err
	}
	fr := fb.Rows()
	defer fr.Close()
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema, codec, parquet.KeyValueMetadata(paramsMetaKey, string(meta)))
	batch := make([]parquet.Row, 256)
	for i := 0; i < len(rows); {
		n, err := fr.ReadRows(batch)
		if n == 0 && err != nil {
			return nil, fmt.Errorf("results: trials row %d of %d: %w", i, len(rows), err)
		}
		for k := range batch[:n] {
			row := batch[k].Clone()
			for j := range params {
				row = append(row, paramParquetValue(vals[i][j], nFixed+j))
			}
			if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
				return nil, err
			}
			i++
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readParams reads the hyperparameter columns the file's metadata lists
// into the rows' Params; ok is false for a file without the metadata (one
// written before the columns existed).
func readParams(pf *parquet.File, rows []TrialRow) (ok bool, err error) {
	meta, found := pf.Lookup(paramsMetaKey)
	if !found {
		return false, nil
	}
	var params []paramColumn
	if err := json.Unmarshal([]byte(meta), &params); err != nil {
		return true, fmt.Errorf("metadata %s: %w", paramsMetaKey, err)
	}
	if len(params) == 0 {
		return true, nil
	}
	byCol := map[int]paramColumn{}
	for _, p := range params {
		leaf, found := pf.Schema().Lookup(p.Name)
		if !found {
			return true, fmt.Errorf("metadata %s lists column %q, which the file lacks", paramsMetaKey, p.Name)
		}
		byCol[leaf.ColumnIndex] = p
	}
	r := parquet.NewReader(pf)
	defer r.Close()
	buf := make([]parquet.Row, 64)
	for i := 0; i < len(rows); {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			if i >= len(rows) {
				return true, fmt.Errorf("more rows than the %d read", len(rows))
			}
			for _, v := range row {
				p, isParam := byCol[v.Column()]
				if !isParam || v.IsNull() {
					continue
				}
				if rows[i].Params == nil {
					rows[i].Params = map[string]any{}
				}
				rows[i].Params[p.Name] = fromParquetValue(v, p.Type)
			}
			i++
		}
		if err != nil || n == 0 {
			if i == len(rows) {
				break
			}
			return true, fmt.Errorf("%d of %d rows: %v", i, len(rows), err)
		}
	}
	return true, nil
}

// fromParquetValue is the Go value of a non-null hyperparameter value.
func fromParquetValue(v parquet.Value, typ string) any {
	switch typ {
	case TypeInt64:
		return v.Int64()
	case TypeDouble:
		return v.Double()
	case TypeBool:
		return v.Boolean()
	}
	return string(v.ByteArray())
}

// fillParams sets the rows' Params (and nothing else) from their Configs,
// typed across the rows.
func fillParams(rows []TrialRow) {
	configs := make([]string, len(rows))
	for i := range rows {
		configs[i] = rows[i].Config
	}
	params, vals := paramTable(configs)
	for i := range rows {
		rows[i].Params = nil
		for j, p := range params {
			if v := vals[i][j]; v != nil {
				if rows[i].Params == nil {
					rows[i].Params = map[string]any{}
				}
				rows[i].Params[p.Name] = v
			}
		}
	}
}
