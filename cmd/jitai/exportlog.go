package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jitai/jitai/engine/store/redisstore"
)

// The JSONL export of the Redis store's decision log.
//
// Each run reads the decisions committed since the last one through a
// consumer group, appends them to the file one JSON record per line (in
// log order: per log shard in commit order, across shards by log entry
// time), fsyncs, and only then acknowledges them; then it trims from the
// log what every consumer group has acknowledged. Redis delivers at least
// once: a run that dies after writing and before acknowledging leaves its
// entries pending, and the next run (same group and consumer) gets them
// again. The writer makes that exactly once in the file: before appending
// it reads the decision ids of the lines at the end of the file (at least
// as many lines as can have been written and not acknowledged) and skips
// re-delivered decisions it finds there. A line cut short by a crash
// during the write is removed first (its decision was not acknowledged, so
// it comes again).

// logExportArgs are the flags of a JSONL export.
type logExportArgs struct {
	study, out, group, consumer string
	batch                       int
	reindex                     bool
	// afterBatch, if set, runs after each batch has been written and
	// fsynced and before it is acknowledged; an error stops the export
	// right there, as a crash would (tests).
	afterBatch func(batch int) error
}

// logExportResult is what a JSONL export did.
type logExportResult struct {
	Appended int // lines appended
	Skipped  int // decisions delivered again and already in the file
	// Removed and Anonymised count the file's lines the erasures applied
	// this run removed and anonymised (exporterase.go).
	Removed, Anonymised int
	Reindexed           int // records Reindex went through (with --reindex)
	Cut                 int64
	Trimmed             int64
	Elapsed             time.Duration
}

// exportLog opens the Redis store and appends the study's new decisions to
// the JSONL file.
func exportLog(ctx context.Context, cfg *Config, redis redisstore.Options, a logExportArgs, stderr io.Writer) (logExportResult, error) {
	if err := checkOutFolder(a.out); err != nil {
		return logExportResult{}, err
	}
	st, err := openRedisStore(ctx, cfg, redis, stderr)
	if err != nil {
		return logExportResult{}, err
	}
	defer st.Close()
	res, err := appendLog(ctx, st, a)
	if res.Cut > 0 {
		fmt.Fprintf(stderr, "jitai export: %s ended in an incomplete line (%d bytes, left by an interrupted export): removed it; its decision is delivered again\n", a.out, res.Cut)
	}
	return res, err
}

// appendLog is the export loop: read a batch, append what is not in the
// file yet, fsync, acknowledge; at the end, trim.
func appendLog(ctx context.Context, st *redisstore.Store, a logExportArgs) (res logExportResult, err error) {
	start := time.Now()
	if ok, err := st.StudyExists(ctx, a.study); err != nil {
		return res, err
	} else if !ok {
		return res, fmt.Errorf("no study %q in the Redis store: nobody is enrolled in it", a.study)
	}
	if a.reindex {
		if res.Reindexed, err = st.Reindex(ctx, a.study); err != nil {
			return res, err
		}
	}
	if res.Removed, res.Anonymised, err = applyErasures(ctx, st, a.study, a.out); err != nil {
		return res, err
	}
	pending, err := st.LogPending(ctx, a.study, a.group, a.consumer)
	if err != nil {
		return res, err
	}
	f, err := openJSONL(a.out)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", a.out, cerr)
		}
	}()
	// Lines that may be delivered again: those of pending entries, which
	// were written by earlier runs after their last acknowledgement; a
	// generous bound on how far back they can be.
	window := int(pending) + 4*a.batch + 10000
	seen, cut, err := jsonlTail(f, window)
	res.Cut = cut
	if err != nil {
		return res, fmt.Errorf("%s: %w", a.out, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("interrupted after %d decisions (all acknowledged): %w", res.Appended, err)
		}
		entries, err := st.ReadLog(ctx, a.study, a.group, a.consumer, a.batch)
		if err != nil {
			return res, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if _, dup := seen[e.DecisionID]; dup {
				res.Skipped++
				continue
			}
			line := []byte(e.Record)
			if bytes.ContainsAny(line, "\r\n") {
				var b bytes.Buffer
				if err := json.Compact(&b, line); err != nil {
					return res, fmt.Errorf("decision %s: the stored record is not JSON: %w", e.DecisionID, err)
				}
				line = b.Bytes()
			}
			_, _ = w.Write(line)
			_ = w.WriteByte('\n')
			res.Appended++
		}
		if err := w.Flush(); err != nil {
			return res, fmt.Errorf("writing %s: %w", a.out, err)
		}
		if err := f.Sync(); err != nil {
			return res, fmt.Errorf("syncing %s: %w", a.out, err)
		}
		if a.afterBatch != nil {
			if err := a.afterBatch(n); err != nil {
				return res, err
			}
		}
		if err := st.Ack(ctx, entries); err != nil {
			return res, fmt.Errorf("%w (the last %d decisions are in the file; the next run gets them again and skips them)", err, len(entries))
		}
	}
	if res.Trimmed, err = st.Trim(ctx, a.study, a.group); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// openJSONL opens (or creates, syncing its folder) the export file for
// reading and writing.
func openJSONL(path string) (*os.File, error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		_ = syncDir(filepath.Dir(path))
	}
	return f, nil
}

// jsonlTail removes an incomplete last line, returns the decision ids of
// the last window lines and leaves f positioned at its end. cut is how many
// bytes it removed.
func jsonlTail(f *os.File, window int) (seen map[string]struct{}, cut int64, err error) {
	seen = map[string]struct{}{}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	if size > 0 {
		end, err := lastNewline(f, size)
		if err != nil {
			return nil, 0, err
		}
		if end+1 < size {
			cut = size - (end + 1)
			size = end + 1
			if err := f.Truncate(size); err != nil {
				return nil, 0, fmt.Errorf("removing an incomplete last line: %w", err)
			}
			if err := f.Sync(); err != nil {
				return nil, 0, err
			}
		}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return nil, 0, err
	}
	if size == 0 {
		return seen, cut, nil
	}
	// Read back until the tail holds more than window line ends.
	var buf []byte
	off, chunk := size, int64(1<<20)
	for off > 0 {
		n := min(chunk, off)
		off -= n
		b := make([]byte, n, n+int64(len(buf)))
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, 0, err
		}
		buf = append(b, buf...)
		if bytes.Count(buf, []byte{'\n'}) > window {
			break
		}
		chunk *= 2
	}
	lines := bytes.Split(buf[:len(buf)-1], []byte{'\n'})
	if off > 0 {
		lines = lines[1:] // the first is only the end of a line
	}
	if len(lines) > window {
		lines = lines[len(lines)-window:]
	}
	for i, l := range lines {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var r struct {
			ID string `json:"decision_id"`
		}
		if err := json.Unmarshal(l, &r); err != nil || r.ID == "" {
			return nil, cut, fmt.Errorf("line %d from the end is not a decision record, so this is not a file the JSONL export wrote: give another --out", len(lines)-i)
		}
		seen[r.ID] = struct{}{}
	}
	return seen, cut, nil
}

// lastNewline returns the offset of the last '\n' in the first size bytes
// of f, or -1.
func lastNewline(f *os.File, size int64) (int64, error) {
	const chunk = 64 << 10
	b := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(0, end-chunk)
		n, err := f.ReadAt(b[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(b[:n], '\n'); i >= 0 {
			return start + int64(i), nil
		}
		end = start
	}
	return -1, nil
}
