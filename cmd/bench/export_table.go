package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"peftbench/results"
)

func init() {
	register(command{
		Name:    "export-table",
		Order:   35,
		Summary: "write a sweep's trials table as CSV or JSON lines, one flat column per hyperparameter",
		Run:     runExportTable,
	})
}

// runExportTable is `bench export-table DIR [--format csv|jsonl] [--out
// FILE]`: trials.parquet as a flat table for tools without a Parquet
// reader (Debian's pandas has no Parquet engine).
func runExportTable(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export-table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "csv", "csv (RFC 4180, a header row, an empty cell for null) or jsonl (one JSON object a line, null for null)")
	out := fs.String("out", "", "file to write (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench export-table DIR [--format csv|jsonl] [--out FILE]")
		fmt.Fprintln(stderr, "\nWrites the trials of the results folder DIR, one row per trial in plan order:")
		fmt.Fprintln(stderr, "the columns of trials.parquet, with intruders as intruders_<ε> and extra as")
		fmt.Fprintln(stderr, "extra_<key> columns, then one column per hyperparameter (lr, alpha, task_<option>, …;")
		fmt.Fprintln(stderr, "see results/doc.go), then tags and note where the sweep has annotations (bench serve).")
		fmt.Fprintln(stderr, "A folder not compacted yet is read from its trial shards.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, interleave(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageErrorf("bench export-table: want one results folder, got %d arguments", fs.NArg())
	}
	var write func(io.Writer, *results.FlatTable) error
	switch *format {
	case "csv":
		write = writeCSV
	case "jsonl":
		write = writeJSONL
	default:
		fs.Usage()
		return usageErrorf("bench export-table: --format %q: want csv or jsonl", *format)
	}
	rows, _, note, err := results.ReadFinished(fs.Arg(0), false)
	if err != nil {
		return fmt.Errorf("bench export-table: %w", err)
	}
	if note != "" {
		fmt.Fprintln(stderr, "bench export-table: "+note)
	}
	ann, err := results.ReadAnnotations(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("bench export-table: %w", err)
	}
	table := results.Flatten(rows)
	table.Annotate(ann)
	var buf bytes.Buffer
	if err := write(&buf, table); err != nil {
		return fmt.Errorf("bench export-table: %w", err)
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench export-table: %w", err)
	}
	return nil
}

// writeCSV writes t as RFC 4180 CSV (CRLF line ends, quoted where
// needed): a header row, then one row per trial, null as an empty cell.
func writeCSV(w io.Writer, t *results.FlatTable) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	rec := make([]string, len(t.Columns))
	for j, c := range t.Columns {
		rec[j] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range t.Rows {
		for j, v := range row {
			rec[j] = csvCell(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvCell formats one cell: numbers as Go's shortest round-trip text
// (inf, -inf for infinities, which Python's float, pandas and DuckDB read),
// times as RFC 3339 in UTC with microseconds.
func csvCell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		case math.IsNaN(x):
			return "nan"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	return fmt.Sprint(v)
}

// writeJSONL writes t as JSON lines: one object per trial, keys in column
// order, null for null. JSON has no infinities or NaN: they are null too.
func writeJSONL(w io.Writer, t *results.FlatTable) error {
	keys := make([][]byte, len(t.Columns))
	for j, c := range t.Columns {
		k, err := json.Marshal(c.Name)
		if err != nil {
			return err
		}
		keys[j] = k
	}
	var line bytes.Buffer
	for _, row := range t.Rows {
		line.Reset()
		line.WriteByte('{')
		for j, v := range row {
			if j > 0 {
				line.WriteByte(',')
			}
			line.Write(keys[j])
			line.WriteByte(':')
			switch x := v.(type) {
			case float64:
				if math.IsInf(x, 0) || math.IsNaN(x) {
					v = nil
				}
			case time.Time:
				v = x.UTC().Format("2006-01-02T15:04:05.000000Z")
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			line.Write(b)
		}
		line.WriteString("}\n")
		if _, err := w.Write(line.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
