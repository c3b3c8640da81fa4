package experiments

import (
	"fmt"
	"strconv"
)

// FullFactorial returns the 2^k design in standard (Yates) order with the first
// factor changing fastest; entries are level indices 0 or 1.
func FullFactorial(k int) [][]int {
	rows := make([][]int, 1<<k)
	for r := range rows {
		rows[r] = make([]int, k)
		for j := 0; j < k; j++ {
			rows[r][j] = (r >> j) & 1
		}
	}
	return rows
}

// BlockAssigner assigns design rows to enrolments by permuted blocks: within a
// stratum, each block of len(rows) consecutive enrolments receives every row
// once, in an order drawn from the study seed. Cell counts within a stratum
// therefore never differ by more than one, and assignment is reproducible from
// the seed, the stratum and the enrolment's sequence number in its stratum.
type BlockAssigner struct {
	rows   [][]int
	drawer *Drawer
}

// NewBlockAssigner returns an assigner over the given design rows.
func NewBlockAssigner(seed string, rows [][]int) (*BlockAssigner, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("block assignment needs at least one design row")
	}
	return &BlockAssigner{rows: rows, drawer: NewDrawer(seed)}, nil
}

// Rows returns the number of design rows, which is also the block size.
func (a *BlockAssigner) Rows() int { return len(a.rows) }

// RowIndex returns the design row for the seq-th enrolment (0-based) in a stratum.
func (a *BlockAssigner) RowIndex(stratum string, seq int64) int {
	n := int64(len(a.rows))
	perm := a.permutation(stratum, seq/n)
	return perm[seq%n]
}

// Row returns the level indices for the seq-th enrolment in a stratum.
func (a *BlockAssigner) Row(stratum string, seq int64) []int {
	return a.rows[a.RowIndex(stratum, seq)]
}

// permutation is a Fisher-Yates shuffle driven by keyed draws, one per swap.
func (a *BlockAssigner) permutation(stratum string, block int64) []int {
	n := len(a.rows)
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	key := "block:" + strconv.FormatInt(block, 10)
	for i := n - 1; i > 0; i-- {
		u := a.drawer.Uniform(stratum, key, strconv.Itoa(i))
		j := int(u * float64(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}
