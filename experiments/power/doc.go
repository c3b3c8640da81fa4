// Package power computes sample size and power for the experiments jitai
// runs, with the conventions of the reference software so that statisticians
// get the numbers they know:
//
//   - MRT computes sample size or power for a micro-randomized trial with a
//     continuous proximal outcome (Liao, Klasnja, Tewari and Murphy 2016,
//     "Sample size calculations for micro-randomized trials in mHealth"),
//     as R's MRTSampleSize (calculateSampleSize, calculatePower) does.
//   - MRTBinary does the same for a binary proximal outcome and the log
//     relative-risk causal excursion effect (Cohn, Qian and Murphy 2023,
//     "Sample size considerations for micro-randomized trials with binary
//     proximal outcomes"), as R's MRTSampleSizeBinary (mrt_binary_ss,
//     mrt_binary_power) does.
//   - Factorial computes sample size, power or the detectable effect of one
//     effect-coded regression coefficient in a two-level factorial experiment
//     (MOST; Collins, Dziak and Li 2009), as R's MOST::FactorialPowerPlan does
//     for independent (unclustered) assignment.
//
// All three reduce to the power of an F test with a noncentral F statistic;
// NoncentralF implements that distribution, which gonum does not provide.
//
// The `jitai power` command (cmd/jitai) parses its flags into these
// specifications; PerDecision and Linspace help it expand per-day inputs.
package power
