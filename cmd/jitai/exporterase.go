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
	"strings"

	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/trial"
)

// Erasures reach the JSONL files the export appends to. An erasure in the
// Redis store writes a notice (the decision ids it removed, or anonymised
// under a surrogate; never the participant's id). Each export run first
// applies the notices it has not applied to its file yet: the line of a
// removed decision goes, that of an anonymised one is replaced by the
// anonymised record (as the store keeps it), the file rewritten whole and
// renamed into place. The last notice applied is kept next to the file
// (FILE.erasures), written after the rewrite: a run killed in between
// applies the notices again, which changes nothing more.

// erasureMark is the file that holds the last erasure notice applied to out.
func erasureMark(out string) string { return out + ".erasures" }

// applyErasures rewrites out for the study's erasure notices not applied to
// it yet; it returns how many lines it removed and anonymised.
func applyErasures(ctx context.Context, st *redisstore.Store, study, out string) (removed, anonymised int, err error) {
	last, err := os.ReadFile(erasureMark(out))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	notices, err := st.Erasures(ctx, study, strings.TrimSpace(string(last)))
	if err != nil || len(notices) == 0 {
		return 0, 0, err
	}
	erased := map[string]string{} // decision id -> surrogate ("" removed)
	for _, n := range notices {
		for _, id := range n.DecisionIDs {
			erased[id] = n.Surrogate
		}
	}
	if _, err := os.Stat(out); err == nil {
		if removed, anonymised, err = rewriteJSONL(out, erased); err != nil {
			return 0, 0, fmt.Errorf("applying erasures to %s: %w", out, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, 0, err
	}
	if err := writeSynced(erasureMark(out), []byte(notices[len(notices)-1].ID+"\n")); err != nil {
		return removed, anonymised, err
	}
	return removed, anonymised, nil
}

// rewriteJSONL copies path without the lines of removed decisions and with
// those of anonymised ones anonymised, then renames the copy over path. A
// last line without its newline (an interrupted append) is copied as it is.
func rewriteJSONL(path string, erased map[string]string) (removed, anonymised int, err error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".rewrite-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	w := bufio.NewWriterSize(tmp, 1<<20)
	r := bufio.NewReaderSize(in, 1<<20)
	for n := 1; ; n++ {
		line, rerr := r.ReadBytes('\n')
		if len(line) > 0 {
			out, what, err := eraseLine(line, erased)
			if err != nil {
				tmp.Close()
				return 0, 0, fmt.Errorf("line %d: %w", n, err)
			}
			removed += what.removed
			anonymised += what.anonymised
			_, _ = w.Write(out)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			tmp.Close()
			return 0, 0, rerr
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return 0, 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, 0, err
	}
	return removed, anonymised, syncDir(filepath.Dir(path))
}

// lineChange counts what eraseLine did.
type lineChange struct{ removed, anonymised int }

// eraseLine is a line of the file after the erasures: unchanged, empty
// (removed) or anonymised.
func eraseLine(line []byte, erased map[string]string) ([]byte, lineChange, error) {
	body := bytes.TrimRight(line, "\n")
	if len(body) == len(line) || len(bytes.TrimSpace(body)) == 0 {
		return line, lineChange{}, nil // incomplete or blank: left for the append to handle
	}
	var head struct {
		ID string `json:"decision_id"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.ID == "" {
		return nil, lineChange{}, errors.New("not a decision record, so this is not a file the JSONL export wrote: give another --out")
	}
	surrogate, ok := erased[head.ID]
	switch {
	case !ok:
		return line, lineChange{}, nil
	case surrogate == "":
		return nil, lineChange{removed: 1}, nil
	}
	var rec trial.Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, lineChange{}, fmt.Errorf("decision %s: %w", head.ID, err)
	}
	if rec.Participant == surrogate {
		return line, lineChange{}, nil // anonymised already
	}
	trial.AnonymiseRecord(&rec, surrogate)
	b, err := json.Marshal(&rec)
	if err != nil {
		return nil, lineChange{}, err
	}
	return append(b, '\n'), lineChange{anonymised: 1}, nil
}

// writeSynced writes path whole (a temporary file renamed into place).
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
