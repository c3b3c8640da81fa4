package console

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/simulate/page"
)

// attemptsShown is how many reload attempts the studies page lists.
const attemptsShown = 5

// studyRow is one study on the studies page.
type studyRow struct {
	ID, Name, Revision string
	LoadedAt           time.Time
	// Status is serving, or serving with the last reload failed.
	Status    string
	LastError *engine.ReloadAttempt
	Attempts  []engine.ReloadAttempt
	// Health is nil when the viewer may not see the study's health.
	Health *engine.StudyHealth
	// Red and Amber count the factors flagged.
	Red, Amber int
}

type studiesData struct {
	Frame
	Studies []studyRow
}

func (c *Console) studiesPage(w http.ResponseWriter, r *http.Request, v viewer) {
	data := studiesData{Frame: c.frame("Studies", v)}
	if !c.may(v, routeStudies, "") {
		c.errorPage(w, r, http.StatusForbidden, "Not allowed", "A "+string(v.tok.Role)+" token may not list studies.")
		return
	}
	for _, rt := range c.eng.Studies() {
		id := rt.Config.ID
		if !c.may(v, routeStudy, id) {
			continue // a study-bound token sees its studies only, as in GET /v1/studies
		}
		row := studyRow{ID: id, Name: rt.Config.Name, Revision: rt.Revision, LoadedAt: rt.LoadedAt, Status: "serving"}
		if st, ok := c.eng.ReloadStatus(id); ok {
			row.Revision, row.LoadedAt, row.LastError = st.Revision, st.LoadedAt, st.LastError
			row.Attempts = st.Attempts[:min(len(st.Attempts), attemptsShown)]
			if st.LastError != nil {
				row.Status = "serving; the last reload failed"
			}
		}
		if c.may(v, routeHealth, id) {
			h, err := c.eng.Health(r.Context(), id)
			if err != nil {
				c.failed(w, r, err)
				return
			}
			row.Health = h
			for _, f := range h.Factors {
				switch f.Flag {
				case engine.FlagRed:
					row.Red++
				case engine.FlagAmber:
					row.Amber++
				}
			}
		}
		data.Studies = append(data.Studies, row)
	}
	c.render(w, http.StatusOK, "studies", data)
}

// count is a labelled count of a table.
type count struct {
	Label string
	N     int64
	Share float64
}

func counts(m map[string]int64, of int64) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		sh := 0.0
		if of > 0 {
			sh = float64(n) / float64(of)
		}
		out = append(out, count{Label: k, N: n, Share: sh})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Label < out[j].Label
	})
	return out
}

type healthData struct {
	Frame
	Name, Revision string
	H              *engine.StudyHealth
	Factors        []factorRow
	Points         []pointRow
	Actions        []count
	Reasons        []count
	// SRMChart draws each factor's realised share of level 1 against the
	// intended (mean logged probability); ReasonChart the unavailability
	// reasons' shares. Each has its table on the page.
	SRMChart    *page.Chart
	ReasonChart *page.Chart
}

func (c *Console) healthPage(w http.ResponseWriter, r *http.Request, v viewer) {
	study := r.PathValue("study")
	// As the API: the token's role and study binding first (403), then
	// whether the study exists (404).
	if !c.may(v, routeHealth, study) {
		c.errorPage(w, r, http.StatusForbidden, "Not allowed", "This token may not see the health of study "+study+".")
		return
	}
	rt, ok := c.eng.Study(study)
	if !ok {
		c.errorPage(w, r, http.StatusNotFound, "No such study", "No study "+study+" is loaded.")
		return
	}
	h, err := c.eng.Health(r.Context(), study)
	if err != nil {
		c.failed(w, r, err)
		return
	}
	f := c.frame(rt.Config.Name+": health", v)
	if c.opts.Refresh > 0 {
		f.Refresh = int(c.opts.Refresh.Seconds())
	}
	data := healthData{Frame: f, Name: rt.Config.Name, Revision: rt.Revision, H: h,
		Factors: factorRows(h.Factors),
		Actions: counts(h.Decisions.ByAction, h.Decisions.Total), Reasons: counts(h.Availability.ByReason, h.Availability.Unavailable)}
	for _, pt := range h.ByDecisionPoint {
		data.Points = append(data.Points, pointRow{DecisionPoint: pt.DecisionPoint, Decisions: pt.Decisions, Factors: factorRows(pt.Factors)})
	}
	if len(h.Factors) > 0 {
		var labels []string
		var realised, intended []float64
		for _, fh := range h.Factors {
			labels = append(labels, fh.Name)
			realised = append(realised, share(float64(fh.Treated), fh.Randomised))
			intended = append(intended, share(fh.Expected, fh.Randomised))
		}
		ch := page.BarChart("Realised against intended share of level 1", labels, realised, intended, "share", "factor (intended behind, realised in front)", -1)
		data.SRMChart = &ch
	}
	if len(data.Reasons) > 0 {
		var labels []string
		var shares []float64
		for _, c := range data.Reasons {
			labels, shares = append(labels, c.Label), append(shares, c.Share)
		}
		ch := page.HBarChart("Unavailable decisions by reason", labels, shares)
		data.ReasonChart = &ch
	}
	c.render(w, http.StatusOK, "health", data)
}

// factorRow is a factor's health with its realised and intended shares of
// level 1.
type factorRow struct {
	engine.FactorHealth
	Realised, Intended float64
}

type pointRow struct {
	DecisionPoint string
	Decisions     int64
	Factors       []factorRow
}

func factorRows(fs []engine.FactorHealth) []factorRow {
	out := make([]factorRow, 0, len(fs))
	for _, f := range fs {
		out = append(out, factorRow{FactorHealth: f, Realised: share(float64(f.Treated), f.Randomised), Intended: share(f.Expected, f.Randomised)})
	}
	return out
}

func share(x float64, of int64) float64 {
	if of == 0 {
		return 0
	}
	return x / float64(of)
}

func (c *Console) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, engine.ErrUnknownStudy) {
		c.errorPage(w, r, http.StatusNotFound, "No such study", err.Error())
		return
	}
	c.opts.Logger.Error("console page failed: " + err.Error())
	c.errorPage(w, r, http.StatusInternalServerError, "Internal error", "The page could not be built; the server's log says why.")
}
