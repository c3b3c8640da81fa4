// Package analysis holds the estimators of the experiment layer, written to
// reproduce the reference software (R: MRTAnalysis for micro-randomised
// trials, lm/anova for factorial experiments; see shared/reference/README.md):
//
//   - WCLS: causal excursion effects of a continuous proximal outcome,
//     weighted and centred least squares (Boruvka et al. 2018);
//   - EMEE: causal excursion effects of a binary proximal outcome on the log
//     relative-risk scale (Qian et al. 2021);
//   - EMEE2: the same with the treatment centred by its randomisation
//     probability and no weights (MRTAnalysis::emee2);
//   - DCEE: distal causal excursion effects, two-stage, with least-squares or
//     zero outcome regressions (MRTAnalysis::dcee, no cross-fitting);
//   - MCEE: natural direct and indirect (mediated) excursion effects on a
//     distal outcome with parametric nuisance models (MRTAnalysis::mcee,
//     control_reg_method "glm");
//   - Factorial: effect-coded least squares for two-level factorial
//     experiments (full or fractional; MOST screening).
//
// From Go:
//
//	tab, err := analysis.ReadCSV(f, "trial.csv", numericColumns, []string{"participant"})
//	res, err := analysis.WCLS(tab, analysis.MRTSpec{
//		ID: "participant", Outcome: "stress_next", Treatment: "prompt",
//		RandProb: analysis.Prob{Column: "prompt_prob"}, Availability: "available",
//		Controls: []string{"stress", "hour"}, Moderators: []string{"hour"},
//	})
//	eff, _ := res.Effect("(Intercept)") // eff.Estimate, eff.CILow, eff.CIHigh, eff.PValue
//
// A Table can also be built in memory with NewTable, SetNumeric and SetText.
// MRTSpec.Columns lists the columns an MRT analysis reads.
//
// # Data for WCLS and EMEE
//
// Long format: one row per participant and decision point, with a header row.
// The rows of a participant must be contiguous (in time order); a participant
// whose rows appear in two separate blocks is an error naming the participant
// and the line where the second block starts. The id column may hold any
// text; every other column used must be numeric (TRUE/FALSE count as 1/0).
//
// Missing values (an empty field, NA or NaN) follow the reference software:
// the id and the availability must be present on every row; on an available
// row the outcome, the treatment, the probabilities, the controls and the
// moderators must be present; on an unavailable row (availability 0) the
// other values are not used (the row has weight 0, though it stays in its
// participant's cluster) and may be missing — typically the proximal outcome,
// and the probability of a point that was never randomised. Any other
// missing value is an error naming the file, line, participant and column.
//
// The treatment must be 0 or 1 and the randomisation and numerator
// probabilities strictly between 0 and 1 on every available row; EMEE also
// requires a 0/1 outcome there.
//
// # Conventions (as MRTAnalysis 0.3.1)
//
// The numerator probability pt defaults to 0.5 (DefaultNumeratorProb), not to
// the randomisation probability. Every moderator must also be a control; the
// design is X = [Z, (A - pt) S] with Z = (1, controls) and S = (1,
// moderators). Effect terms are named "(Intercept)" and the moderators'
// column names; a linear combination (MRTSpec.Lincombs, --lincomb "1,1") is
// named as MRTAnalysis names it, e.g. "(Intercept) + home" or
// "2*(Intercept) - home".
//
// WCLS: sandwich variance; when n_eff (participants with at least one
// non-zero weight) is at most 50 the Mancl-DeRouen small-sample correction and
// Hotelling's test (test "hotelling"), otherwise Wald tests with an F
// reference distribution (test "wald"); both use d1 = the number of non-zero
// entries of the contrast and d2 = n_eff - q - p, q and p the control and
// effect dimensions with intercepts. The statistic reported is
// (estimate/std_err)^2, as MRTAnalysis prints it. See WCLS for the formulas.
//
// EMEE: Newton's method from 0, small-sample adjusted sandwich variance, t
// tests and 95% intervals with n - p - q degrees of freedom, n every distinct
// participant (test "t"; statistic is the t value, df1 is 1 and df2 the
// degrees of freedom).
//
// # EMEE2, DCEE and MCEE
//
// These follow MRTAnalysis 0.3.1 (see shared/reference/mrt2/README.md and
// the doc comments of EMEE2, DCEE and MCEE). Unlike WCLS and EMEE they use
// the unavailable rows (EMEE2 in its small-sample adjustment, DCEE and MCEE
// in the stage-2 projection and the stage-1 fits), so the data must be
// complete on every row: a missing value anywhere is an error naming the
// line, participant and column. Their tests are t tests: EMEE2 with n - p -
// q degrees of freedom, DCEE n - p, MCEE n - 2 dim(f), n every distinct
// participant. DCEE names its terms "Intercept", ... and its linear
// combinations "L1", ...; MCEE "alpha:(Intercept)", "beta:dp", ... and "L x
// alpha", "L x beta", "L x theta". The stage-1 regressions are R's lm (least
// squares) and glm (logistic IRLS with glm.fit's stopping rule). Not
// implemented: the machine-learning learners of dcee and mcee (gam, rf,
// ranger, sl; dcee's default is gam), dcee's cross-fitting, mcee's row
// weights (weight_per_row, specific_dp_only) and mcee_general beyond what
// MCEESpec expresses (known p, q by glm, eta, mu and nu by lm, q and mu
// sharing their controls, eta and nu sharing theirs), and formulas beyond
// plain columns (R's I(x^2), poly(), interactions: add the column to the
// data instead).
//
// # Factorial experiments
//
// Effect coding: the low level is -1 and the high level +1 (FactorialSpec
// Levels, or else the first level in sorted order is low). Coefficients are
// regression coefficients on these codes; the classical effect is 2 x the
// coefficient. The ANOVA table has sequential (type I) sums of squares, as
// R's anova(lm(...)), which for balanced, orthogonal designs equal the type
// III ones. See Factorial.
//
// # Command line
//
// The `jitai analyze wcls|emee|emee2|dcee|mcee|factorial` command
// (cmd/jitai) parses its flags into MRTSpec, DCEESpec, MCEESpec and
// FactorialSpec, reads the CSV with ReadCSVFile and
// writes WriteMRTText, WriteFactorialText or, with --json, the JSON form of
// MRTResult or FactorialResult.
package analysis
