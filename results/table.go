package results

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
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
	pf, err := openTable(path, data)
	if err != nil {
		return nil, err
	}
	return readRows[T](path, pf)
}

// openTable opens data, the bytes of the Parquet file at path, after
// checking its frame and page headers.
func openTable(path string, data []byte) (*parquet.File, error) {
	if err := checkFrame(data); err != nil {
		return nil, fmt.Errorf("results: read %s (%w): %w", path, ErrDamaged, err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("results: read %s (%w): %w", path, ErrDamaged, err)
	}
	if err := checkPages(data, pf.Metadata()); err != nil {
		return nil, fmt.Errorf("results: read %s (%w): %w", path, ErrDamaged, err)
	}
	return pf, nil
}

// readRows reads every row of pf as a T. Columns of the file that T lacks
// are skipped, and T's columns that the file lacks read as zero (null).
func readRows[T any](path string, pf *parquet.File) (rows []T, err error) {
	// Read in batches rather than allocating the footer's row count up
	// front: a damaged footer may claim any number of rows.
	want := pf.NumRows()
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	buf := make([]T, min(want, 1024))
	for int64(len(rows)) < want {
		// parquet-go decodes into the maps and slices it finds in buf, and
		// the rows already appended share them: zero buf first, or the
		// next batch overwrites the extras of the last (a table of more
		// than 1024 trials read one trial's extra metrics as another's).
		clear(buf)
		n, err := r.Read(buf)
		rows = append(rows, buf[:n]...)
		if err != nil {
			if int64(len(rows)) == want {
				break
			}
			return nil, fmt.Errorf("results: read %s (%w): %d of %d rows: %w", path, ErrDamaged, len(rows), want, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("results: read %s (%w): %d of %d rows", path, ErrDamaged, len(rows), want)
		}
	}
	return rows, nil
}

// decodeTrials decodes a trials table: the fixed columns, and the
// hyperparameter columns into Params (derived from Config for a file
// written before they existed).
func decodeTrials(path string, data []byte) (rows []TrialRow, err error) {
	defer func() {
		if e := recover(); e != nil {
			rows, err = nil, fmt.Errorf("results: read %s: corrupt file (%w): %v", path, ErrDamaged, e)
		}
	}()
	pf, err := openTable(path, data)
	if err != nil {
		return nil, err
	}
	recs, err := readRows[trialRecord](path, pf)
	if err != nil {
		return nil, err
	}
	rows = make([]TrialRow, len(recs))
	for i := range recs {
		rows[i] = fromTrialRecord(&recs[i])
	}
	ok, err := readParams(pf, rows)
	if err != nil {
		return nil, fmt.Errorf("results: read %s (%w): hyperparameter columns: %w", path, ErrDamaged, err)
	}
	if !ok {
		fillParams(rows)
	}
	return rows, nil
}

// checkFrame checks a Parquet file's frame before parquet-go reads it:
// the magic at both ends and a footer length that fits in the file
// (parquet-go allocates the declared length first, so a damaged footer
// length of 4 GiB would be allocated).
func checkFrame(data []byte) error {
	const magic = "PAR1"
	if len(data) < 12 || string(data[:4]) != magic || string(data[len(data)-4:]) != magic {
		return fmt.Errorf("not a Parquet file (%d bytes, no PAR1 frame)", len(data))
	}
	footer := binary.LittleEndian.Uint32(data[len(data)-8:])
	if int64(footer) > int64(len(data)-12) {
		return fmt.Errorf("footer length %d exceeds the file's %d bytes", footer, len(data))
	}
	return nil
}

// ReadTrials reads a trials table (a sweep's trials.parquet or a shard's).
// Null metrics read as NaN, null times as the zero time, a null rank as 0
// and a null error, phase or target_metric_name as "". The hyperparameter
// columns fill Params; a table written before they existed, and a shard's,
// has Params derived from its rows' Configs, typed across its rows.
func ReadTrials(path string) ([]TrialRow, error) {
	data, err := readVerified(path)
	if err != nil {
		return nil, err
	}
	return decodeTrials(path, data)
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

// checkPages walks the page headers of every column chunk before
// parquet-go reads them: parquet-go allocates each page's declared
// compressed size (and decompresses into its declared uncompressed size)
// before reading it, so a damaged header could claim gigabytes in a file
// of a few kilobytes. Every page must lie inside its chunk, every chunk
// inside the file, and no page may claim to inflate more than
// maxInflation times (plus 1 MiB).
func checkPages(data []byte, md *format.FileMetaData) error {
	const maxInflation = 1024
	end := int64(len(data))
	var compact thrift.CompactProtocol
	for gi, g := range md.RowGroups {
		for ci, c := range g.Columns {
			m := c.MetaData
			start := m.DataPageOffset
			if d := m.DictionaryPageOffset; d > 0 && d < start {
				start = d
			}
			stop := start + m.TotalCompressedSize
			if start < 4 || m.TotalCompressedSize < 0 || stop < start || stop > end {
				return fmt.Errorf("row group %d column %d: chunk [%d, %d) outside the file's %d bytes", gi, ci, start, stop, end)
			}
			for off := start; off < stop; {
				// The bytes reader bounds every declared length by the data
				// (the stream reader allocates it first).
				r := compact.NewReaderFromBytes(data[off:stop])
				var h format.PageHeader
				if err := thrift.NewDecoder(r).Decode(&h); err != nil {
					return fmt.Errorf("row group %d column %d: page header at %d: %w", gi, ci, off, err)
				}
				n, ok := r.(interface{ BytesRead() int })
				if !ok {
					return fmt.Errorf("results: parquet-go's thrift reader no longer reports its position")
				}
				off += int64(n.BytesRead())
				size, full := int64(h.CompressedPageSize), int64(h.UncompressedPageSize)
				if size < 0 || off+size > stop {
					return fmt.Errorf("row group %d column %d: page at %d claims %d bytes, its chunk has %d left", gi, ci, off, size, stop-off)
				}
				if full < 0 || full > maxInflation*size+1<<20 {
					return fmt.Errorf("row group %d column %d: page at %d claims to inflate %d bytes to %d", gi, ci, off, size, full)
				}
				off += size
			}
		}
	}
	return nil
}
