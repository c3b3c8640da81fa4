package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/experiments/export"
)

// export serves GET /v1/studies/{study}/export?format=csv|parquet
// [&table=decisions|participants|engagement|codebook|all]: the analysis-ready export of a
// study (experiments/export) as a file download. The tables are built in
// full before the first byte is sent, so an error is still a problem
// document; the file is then streamed.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	_, ok := s.eng.Study(study)
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	q := r.URL.Query()
	f := export.CSV
	if v := q.Get("format"); v != "" {
		var err error
		if f, err = export.ParseFormat(v); err != nil {
			s.fail(w, r, &trial.InputError{Field: "format", Reason: fmt.Sprintf("%q is not supported: use csv or parquet", v)})
			return
		}
	}
	table := q.Get("table")
	if table == "" {
		table = export.DecisionsTable
	}
	switch table {
	case export.DecisionsTable, export.ParticipantsTable, export.EngagementTable, "codebook", export.ArchiveTable:
	default:
		s.fail(w, r, &trial.InputError{Field: "table", Reason: fmt.Sprintf("%q is not a table: use decisions, participants, engagement, codebook or all (a zip archive of every table and the codebook)", table)})
		return
	}
	ts, err := s.eng.Export(r.Context(), study, export.Options{})
	if errors.Is(err, context.DeadlineExceeded) {
		// Not a store outage: the study is too large for one request.
		writeProblem(w, r, problem(http.StatusServiceUnavailable, "export-timeout", "Export took too long",
			fmt.Sprintf("building the export took longer than the request timeout (%s): raise request_timeout, or run `jitai export --study %s` on this machine (it reads beside the running server)", s.requestTimeout, study), ""))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	name := study + "_" + table + f.Ext()
	h := w.Header()
	if table == export.ArchiveTable {
		h.Set("Content-Type", "application/zip")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s_export.zip"`, study))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := export.WriteArchive(bw, ts, f, study); err == nil {
			err = bw.Flush()
		} else {
			s.log.Warn("export interrupted", zap.String("study", study), zap.Error(err))
		}
		return
	}
	if table == "codebook" {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s_codebook.json"`, study))
		h.Set("Cache-Control", "no-store")
		files := map[string]string{
			export.DecisionsTable:    study + "_" + export.DecisionsTable + f.Ext(),
			export.ParticipantsTable: study + "_" + export.ParticipantsTable + f.Ext(),
			export.EngagementTable:   study + "_" + export.EngagementTable + f.Ext(),
		}
		w.WriteHeader(http.StatusOK)
		if err := ts.Codebook(f, files).WriteJSON(w); err != nil {
			s.log.Warn("export interrupted", zap.String("study", study), zap.Error(err))
		}
		return
	}
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	err = ts.Write(bw, table, f)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status is sent: the client sees a truncated body.
		s.log.Warn("export interrupted", zap.String("study", study), zap.String("table", table), zap.Error(err))
	}
}
