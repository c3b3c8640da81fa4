package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// EMEE2 estimates causal excursion effects of a binary proximal outcome on
// the log relative-risk scale with the treatment centred by the randomisation
// probability, following MRTAnalysis::emee2 and its summary. With Z = (1,
// controls), X = (1, moderators), cA = A - p and I availability, theta =
// (alpha, beta) solves sum_t I D r = 0 with
//
//	D = [Z ; cA X],  r = exp(-cA X'beta) Y - exp(Z'alpha)
//
// (no weights; Newton's method from 0 with the analytic Jacobian J = sum I D
// dr/dtheta'). The variance is the small-sample adjusted sandwich J^-1 (sum_i
// u_i u_i') J^-T with u_i = D_i' I_i (I - H_i)^-1 r_i and H_i = R_i J^-1 D_i'
// (R_i the rows dr/dtheta'); as in MRTAnalysis, H_i, R_i, D_i and r_i are
// not masked by availability, so the unavailable rows enter the adjusted
// standard errors, and the data must be complete on every row. Estimate
// StdErrUnadjusted is the plain sandwich (u_i = D_i' I_i r_i). Tests are t
// tests with n - p - q degrees of freedom, n every distinct participant.
//
// Differences from EMEE and WCLS: the numerator probability is ignored (as
// emee2 ignores numerator_prob) and moderators need not be controls.
func EMEE2(t *Table, s MRTSpec) (*MRTResult, error) {
	if err := s.validate(false); err != nil {
		return nil, fmt.Errorf("emee2: %w", err)
	}
	d, err := prepareFull(t, fullSpec{
		who: "emee2", id: s.ID, outcome: s.Outcome, treatment: s.Treatment, availability: s.Availability,
		randProb: s.RandProb, columns: append(append([]string(nil), s.Controls...), s.Moderators...), binaryOutcome: true,
	})
	if err != nil {
		return nil, fmt.Errorf("emee2: %w", err)
	}
	m := &emee2Model{d: d, ctl: s.Controls, mod: s.Moderators, ctlv: d.columns(s.Controls), modv: d.columns(s.Moderators),
		q: 1 + len(s.Controls), p: 1 + len(s.Moderators)}
	return m.fit(s)
}

// emee2Model is the EMEE2 estimating equation on a data set.
type emee2Model struct {
	d          *fullData
	ctl, mod   []string    // control and moderator names
	ctlv, modv [][]float64 // their columns
	q, p       int
}

// rowParts fills, for row i at theta, D (in dv) and dr/dtheta' (in dr) and
// returns the residual r.
func (m *emee2Model) rowParts(i int, theta, z, x, dv, dr []float64) float64 {
	designRow(i, m.ctlv, z)
	designRow(i, m.modv, x)
	ca := m.d.a[i] - m.d.p[i]
	eb := math.Exp(-ca * dot(x, theta[m.q:]))
	ez := math.Exp(dot(z, theta[:m.q]))
	y := m.d.y[i]
	for k, v := range z {
		dv[k] = v
		dr[k] = -ez * v
	}
	for k, v := range x {
		dv[m.q+k] = ca * v
		dr[m.q+k] = -eb * y * ca * v
	}
	return eb*y - ez
}

// buffers returns scratch vectors for rowParts.
func (m *emee2Model) buffers() (z, x, dv, dr []float64) {
	return make([]float64, m.q), make([]float64, m.p), make([]float64, m.q+m.p), make([]float64, m.q+m.p)
}

// eval is the estimating function sum I D r and its Jacobian.
func (m *emee2Model) eval(theta, ef, jac []float64) {
	dim := m.q + m.p
	z, x, dv, dr := m.buffers()
	clear(ef)
	clear(jac)
	for i := 0; i < m.d.n; i++ {
		if m.d.avail[i] == 0 {
			continue
		}
		r := m.rowParts(i, theta, z, x, dv, dr)
		for k, v := range dv {
			ef[k] += v * r
		}
		addOuter(jac, dim, 1, dv, dr)
	}
}

// addOuter adds w a b' to the dim x dim row-major acc.
func addOuter(acc []float64, dim int, w float64, a, b []float64) {
	for r := 0; r < dim; r++ {
		wr := w * a[r]
		row := acc[r*dim : (r+1)*dim]
		for c := range row {
			row[c] += wr * b[c]
		}
	}
}

func (m *emee2Model) fit(s MRTSpec) (*MRTResult, error) {
	dim := m.q + m.p
	n := len(m.d.groups)
	df := n - dim
	if df <= 0 {
		return nil, fmt.Errorf("emee2: %d participants are too few for %d coefficients (%d controls and %d effect terms, intercepts included)", n, dim, m.q, m.p)
	}
	theta, jac, iter, err := newtonSolve("emee2", dim, m.eval)
	if err != nil {
		return nil, err
	}
	adj, unadj, err := m.vcov(theta, jac)
	if err != nil {
		return nil, err
	}
	res := &MRTResult{
		Estimator: "emee2", NParticipants: n, NEff: m.d.nEff(), SmallSample: true, Test: "t",
		Coef: theta, Vcov: adj, Iterations: iter,
	}
	ctlNames := append([]string{"(Intercept)"}, m.ctl...)
	modNames := append([]string{"(Intercept)"}, m.mod...)
	crit := tQuantile(0.975, float64(df))
	add := func(to *[]Estimate, term string, c []float64) error {
		e, err := tEstimate("emee2", term, dot(c, theta), quadForm(adj, c), df, crit)
		e.StdErrUnadjusted = math.Sqrt(quadForm(unadj, c))
		*to = append(*to, e)
		return err
	}
	rows, names := effectContrasts(m.q, m.p, modNames, s.Lincombs)
	for k, c := range rows {
		if err := add(&res.Effects, names[k], c); err != nil {
			return nil, err
		}
	}
	for j := 0; j < m.q; j++ {
		c := make([]float64, dim)
		c[j] = 1
		if err := add(&res.Controls, ctlNames[j], c); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// vcov returns the adjusted and the unadjusted variance of theta. With
// G_i = D_i' R_i and g_i = D_i' r_i over all of participant i's rows and
// GI_i, gI_i the same over its available rows, the Woodbury identity gives
// D_i' I_i (I - H_i)^-1 r_i = gI_i + GI_i (J - G_i)^-1 g_i.
func (m *emee2Model) vcov(theta, jac []float64) (adj, unadj *mat.SymDense, err error) {
	dim := m.q + m.p
	z, x, dv, dr := m.buffers()
	g, gI := make([]float64, dim), make([]float64, dim)
	gm, gmI := make([]float64, dim*dim), make([]float64, dim*dim)
	accAdj, accUn := make([]float64, dim*dim), make([]float64, dim*dim)
	u := make([]float64, dim)
	v := mat.NewVecDense(dim, nil)
	jg := mat.NewDense(dim, dim, nil)
	var lu mat.LU
	for _, grp := range m.d.groups {
		clear(g)
		clear(gI)
		clear(gm)
		clear(gmI)
		for i := grp.start; i < grp.end; i++ {
			r := m.rowParts(i, theta, z, x, dv, dr)
			av := m.d.avail[i]
			for k, w := range dv {
				g[k] += w * r
				gI[k] += av * w * r
			}
			addOuter(gm, dim, 1, dv, dr)
			addOuter(gmI, dim, av, dv, dr)
		}
		for k := range gm {
			jg.RawMatrix().Data[k] = jac[k] - gm[k]
		}
		lu.Factorize(jg)
		if err := lu.SolveVecTo(v, false, mat.NewVecDense(dim, g)); err != nil {
			return nil, nil, fmt.Errorf("emee2: the small-sample adjustment is undefined: participant %q alone determines some coefficients (I - H_i is singular): %w", grp.id, err)
		}
		copy(u, gI)
		for r := 0; r < dim; r++ {
			u[r] += dot(gmI[r*dim:(r+1)*dim], v.RawVector().Data)
		}
		addOuterUpper(accAdj, dim, 1, u)
		addOuterUpper(accUn, dim, 1, gI)
	}
	lu.Factorize(mat.NewDense(dim, dim, append([]float64(nil), jac...)))
	if adj, err = sandwich(&lu, symFromUpper(accAdj, dim)); err != nil {
		return nil, nil, fmt.Errorf("emee2: %w", err)
	}
	if unadj, err = sandwich(&lu, symFromUpper(accUn, dim)); err != nil {
		return nil, nil, fmt.Errorf("emee2: %w", err)
	}
	return adj, unadj, nil
}

// sandwich returns J^-1 M J^-T for the factorized J.
func sandwich(lu *mat.LU, meat mat.Symmetric) (*mat.SymDense, error) {
	var jm, jmj mat.Dense
	if err := lu.SolveTo(&jm, false, meat); err != nil {
		return nil, fmt.Errorf("singular Jacobian: %w", err)
	}
	if err := lu.SolveTo(&jmj, false, jm.T()); err != nil {
		return nil, fmt.Errorf("singular Jacobian: %w", err)
	}
	dim := meat.SymmetricDim()
	out := mat.NewSymDense(dim, nil)
	for r := 0; r < dim; r++ {
		for c := r; c < dim; c++ {
			out.SetSym(r, c, (jmj.At(r, c)+jmj.At(c, r))/2)
		}
	}
	return out, nil
}
