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
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Table file names, in a sweep folder and in each trial's shard folder.
const (
	TrialsFile   = "trials.parquet"
	StepsFile    = "steps.parquet"
	SpectraFile  = "spectra.parquet"
	ManifestFile = "manifest.json"
	TrialsDir    = "trials"
)

// Compression codecs. The compacted tables use zstd at its fastest level
// (4x faster than its default here, files 15% larger); shards, small and
// read once by Compact, use snappy, whose per-page cost is far lower.
var (
	tableCodec compress.Codec = &zstd.Codec{Level: zstd.SpeedFastest}
	shardCodec compress.Codec = &parquet.Snappy
)

// encode returns rows as a Parquet file compressed with codec. Equal rows
// give equal bytes: the file carries no time or random state.
func encode[T any](rows []T, codec compress.Codec) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.Compression(codec))
	if _, err := w.Write(rows); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readTable reads every row of the Parquet file at path, checked against
// the checksums.json beside it. A damaged file gives an error naming it
// and wrapping ErrDamaged, never a panic.
func readTable[T any](path string) ([]T, error) {
	data, err := readVerified(path)
	if err != nil {
		return nil, err
	}
	return decodeTable[T](path, data)
}

// decodeTable decodes data, the bytes of the Parquet file at path.
func decodeTable[T any](path string, data []byte) (rows []T, err error) {
	defer func() {
		if e := recover(); e != nil {
			rows, err = nil, fmt.Errorf("results: read %s: corrupt file (%w): %v", path, ErrDamaged, e)
		}
	}()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("results: read %s (%w): %w", path, ErrDamaged, err)
	}
	rows = make([]T, pf.NumRows())
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	n, err := r.Read(rows)
	if err != nil && n != len(rows) {
		return nil, fmt.Errorf("results: read %s (%w): %w", path, ErrDamaged, err)
	}
	if n != len(rows) {
		return nil, fmt.Errorf("results: read %s (%w): %d of %d rows", path, ErrDamaged, n, len(rows))
	}
	return rows, nil
}

// ReadTrials reads a trials table (a sweep's trials.parquet or a shard's).
// Null metrics read as NaN, null times as the zero time.
func ReadTrials(path string) ([]TrialRow, error) {
	recs, err := readTable[trialRecord](path)
	if err != nil {
		return nil, err
	}
	rows := make([]TrialRow, len(recs))
	for i := range recs {
		rows[i] = fromTrialRecord(&recs[i])
	}
	return rows, nil
}

// ReadSteps reads a steps table.
func ReadSteps(path string) ([]StepRow, error) {
	recs, err := readTable[stepRecord](path)
	if err != nil {
		return nil, err
	}
	return fromStepRecords(recs), nil
}

// ReadSpectra reads a spectra table.
func ReadSpectra(path string) ([]SpectrumRow, error) {
	recs, err := readTable[spectrumRecord](path)
	if err != nil {
		return nil, err
	}
	return fromSpectrumRecords(recs), nil
}

// ReadArrow reads any of the tables into an Arrow table through Apache
// Arrow's own Parquet reader, independent of the writer this package uses.
// The file is checked against the checksums.json beside it first.
// The caller releases the table.
func ReadArrow(path string) (arrow.Table, error) {
	data, err := readVerified(path)
	if err != nil {
		return nil, err
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
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("results: arrow: read %s: %w", path, err)
	}
	return tbl, nil
}

// ReadTrialsArrow reads a trials table as an Arrow table; see ReadArrow.
func ReadTrialsArrow(path string) (arrow.Table, error) { return ReadArrow(path) }
