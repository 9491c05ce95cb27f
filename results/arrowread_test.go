package results

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
)

// ReadArrow reads any of the tables into an Arrow table through Apache
// Arrow's own Parquet reader, independent of the writer this package uses.
// The file is checked against the checksums.json beside it first.
// The caller releases the table.
//
// It lives in the tests (exported for the fuzz test of package
// results_test): the package's own build does not pull arrow-go's ~43
// packages into every importer, while its tests still read every table
// through a reader independent of the writer, as pandas, Polars and DuckDB
// users do.
func ReadArrow(path string) (tbl arrow.Table, err error) {
	data, err := readVerified(path)
	if err != nil {
		return nil, err
	}
	if err := checkFrame(data); err != nil {
		return nil, fmt.Errorf("results: arrow: read %s (%w): %w", path, ErrDamaged, err)
	}
	// Arrow's reader panics on some damaged metadata (an unknown logical
	// type): a damaged file is an error, not a crash.
	defer func() {
		if e := recover(); e != nil {
			tbl, err = nil, fmt.Errorf("results: arrow: read %s: corrupt file (%w): %v", path, ErrDamaged, e)
		}
	}()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err == nil {
		err = checkPages(data, pf.Metadata())
	}
	if err != nil {
		return nil, fmt.Errorf("results: arrow: read %s (%w): %w", path, ErrDamaged, err)
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("results: arrow: read %s: %w", path, err)
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("results: arrow: read %s: %w", path, err)
	}
	tbl, err = fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("results: arrow: read %s: %w", path, err)
	}
	return tbl, nil
}

// ReadTrialsArrow reads a trials table as an Arrow table; see ReadArrow.
func ReadTrialsArrow(path string) (arrow.Table, error) { return ReadArrow(path) }
