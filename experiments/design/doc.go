// Package design builds two-level full and fractional factorial designs with
// the conventions of R's FrF2, so that statisticians get the designs they
// know:
//
//   - factors are named A, B, C, ... skipping I (after 25 factors a, b, c, ...
//     skipping i; beyond 50 factors F1, F2, ...);
//   - a 2^(k-p) design has q = k-p base factors (the first q factors, a full
//     factorial in standard (Yates) order with the first factor changing
//     fastest) and p generated factors, each the product of a set of base
//     factors: its generator, written with base-factor words (E=ABCD);
//   - the default design for a run size is the minimum-aberration one: the
//     lexicographically smallest word-length pattern (A3, A4, ...).
//
// MinimumAberration and ForResolution find that design by search, not from a
// table; FromGenerators builds a design from user-given generators. A Design
// reports its generators, defining relation, word-length pattern,
// resolution, alias chains of main effects and two-factor interactions
// (FrF2-style strings such as "AB=CE=DF"), clear two-factor interactions, and
// its design matrix in -1/+1 coding (Matrix) or as 0/1 level indices (Rows,
// for between-person assignment).
//
// # The search
//
// A design is a set of k distinct nonzero columns of GF(2)^q (bitmasks over
// the base factors): the q unit columns of the base factors plus p
// interaction columns for the generated factors. A word of the defining
// relation is a set of columns that sums (XORs) to zero, so the word-length
// pattern is a property of the column set, and relabelling the base factors
// (GL(q,2)) gives isomorphic designs.
//
// The direct search is a depth-first branch and bound over the generator
// columns in increasing order, so that among designs of equal pattern the
// lexicographically smallest is met first. Each node keeps, for every column
// v, how many pairs, triples, ... of chosen columns sum to v; that gives in
// O(2^q) the words a new column creates and lower bounds on the final
// A3..A6: the partial pattern plus the smallest increments of the columns
// still available, and, for A4 of a design without words of length 3 (where
// 3 A4 is the sum over columns v of C(m_v, 2), m_v being the number of
// pairs summing to v), a water-filling bound on how the pairs still to come
// can spread. Columns that would create words shorter than the resolution of
// the best design so far are not tried, and branches whose bound is
// lexicographically worse than that design are cut. A greedy design is the
// first incumbent. Symmetric branches are cut by an orderly rule: a
// generator set is kept only if no permutation of the base factors maps it
// to a lexicographically smaller set (checked incrementally on bitsets, at
// every depth for q <= 6, the first 5 for q = 7 and the first 2 for q = 8).
// None of these cuts can remove the lexicographically smallest
// minimum-aberration design, so a search that finishes is exact.
//
// When k > 2^(q-1) the search works on the complement T of the design in the
// 2^q - 1 columns (t = 2^q - 1 - k columns). By the MacWilliams identities the
// word-length pattern is a fixed function of the power moments of the
// design's Walsh spectrum, which are affine in those of T, so minimum
// aberration of the design is the same as maximizing A3(T), then minimizing
// A4(T), maximizing A5(T), ... (Tang and Wu 1996; Chen and Hedayat 1996).
// Let r0 be the smallest dimension with 2^r0 - 1 >= t. Bounds computed at run
// time (a basis count, a spectral bound and a hyperplane decomposition with a
// rank argument; see lineBounds.spanned) prove that every T spanning more
// than r0 dimensions has strictly fewer words of length 3 than the best T
// inside an r0-dimensional subspace V (they hold for every run size up to
// 256). Inside V the same complement argument turns the problem back into a
// minimum-aberration problem for U = V \ T, with u = 2^r0 - 1 - t < 2^(r0-1)
// columns, which the direct search solves; then, for every subspace V, a
// search for the lexicographically smallest U with that pattern gives the
// generator columns, and the smallest over all V is returned.
//
// The search is bounded by a number of search nodes (Options.MaxNodes,
// DefaultMaxNodes by default), never by the clock unless asked to
// (Options.Budget, for interactive use): the same request gives the same
// design, proven or not, on any machine. Every design with up to 64 runs,
// and with 128 runs and up to 7 added factors, is proven within
// DefaultMaxNodes (the largest count, 23 factors in 64 runs, is 64,685
// nodes; about 0.1 s). Larger searches often finish too; one that reaches
// its budget returns the best design found, with ProvenMinimumAberration
// false and a note saying so. A proven design does not depend on the budget
// or on how the search is pruned: it is the unique design the tie-breaking
// rule below selects.
//
// # Tie-breaking
//
// Many generator sets give the same (minimum) word-length pattern. The
// design returned is, among all minimum-aberration designs, the one whose
// generator columns, numbered in Yates order (A=1, B=2, AB=3, C=4, ...) and
// sorted, form the lexicographically smallest list. This reproduces FrF2's
// catalogue designs used as references (4-1.1 D=ABC, 5-1.1 E=ABCD, 6-2.1
// E=ABC F=ABD, 7-3.1 E=ABC F=ABD G=ACD, with their matrices row for row).
// FrF2's catalogue (Chen, Sun and Wu 1993, and later catalogues) fixes its
// own representatives, so for other designs the generators may differ from
// FrF2's while the word-length pattern is the same.
package design
