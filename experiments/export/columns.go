package export

import (
	"strconv"
	"time"
)

// A table's columns come from its registry: an ordered list of column
// definitions, each the column's codebook entry (name, type, unit, levels,
// description, when missing) and the getter that reads its value from a
// row's data. The CSV and Parquet writers and the codebook all take the
// columns the registry made, so a column's name, type, codebook entry and
// value come from one definition, and adding a column is adding one.
//
// A column's Type is fixed when it is defined: add takes it from the Go
// type its getter returns, so a getter cannot produce a value of another
// type. The columns a study declares are defined from study.yaml. Only
// the policy-input columns (ema_*, ctx_*, ...) and first/last outcomes of
// EMA or context variables, whose values the study does not type, take
// their type from the kinds of value seen in the whole export (see kinds);
// that is settled once, before any row is built, and never per row.

// cellValue is the Go type of a column's values, one per Type.
type cellValue interface {
	int64 | float64 | string | time.Time
}

// typeOf is the column Type of values of Go type V.
func typeOf[V cellValue]() Type {
	var v V
	switch any(v).(type) {
	case int64:
		return Integer
	case float64:
		return Double
	case time.Time:
		return Timestamp
	}
	return String
}

// columnDef is one column of a registry: its codebook entry and its getter.
type columnDef[R any] struct {
	Column
	value func(R) any // nil when the row has no value
}

// registry is the ordered column definitions of one table whose rows'
// data are of type R.
type registry[R any] struct {
	name  string
	names map[string]bool
	defs  []columnDef[R]
}

func newRegistry[R any](table string) *registry[R] {
	return &registry[R]{name: table, names: map[string]bool{}}
}

// about is a column's codebook entry less its name and type.
type about struct {
	unit     string
	levels   []string
	desc     string
	missing  string
	variable *Variable // the data dictionary's entry, if any
}

// add appends a column of values of Go type V: get returns a row's value
// and whether it has one (false: missing). A name that a column of the
// table already has gets a numeric suffix (a study variable named like a
// fixed column). add returns the column's final name.
func add[R any, V cellValue](r *registry[R], name string, a about, get func(R) (V, bool)) string {
	return r.define(name, typeOf[V](), a, func(x R) any {
		if v, ok := get(x); ok {
			return v
		}
		return nil
	})
}

// addAs appends a column of type t (Integer, Double or String) whose raw
// values (float64, bool, string, int64 or nil) are converted to t by
// convert, which gives a value of t's Go type or nil (missing).
func addAs[R any](r *registry[R], name string, t Type, a about, raw func(R) any) string {
	return r.define(name, t, a, func(x R) any { return convert(raw(x), t) })
}

// define appends a column of type t whose getter gives nil or a value of
// t's Go type; add and addAs are the ways to call it.
func (r *registry[R]) define(name string, t Type, a about, value func(R) any) string {
	name = uniq(r.names, name)
	r.defs = append(r.defs, columnDef[R]{
		Column: Column{Name: name, Table: r.name, Type: t, ParquetType: parquetTypeName(t), Unit: a.unit, Levels: a.levels, Description: a.desc, Missing: a.missing, Variable: a.variable, RClass: rClass(t), PandasDtype: pandasDtype(t)},
		value:  value,
	})
	return name
}

// columns returns the codebook entries of the columns, in order.
func (r *registry[R]) columns() []Column {
	cols := make([]Column, len(r.defs))
	for i, d := range r.defs {
		cols[i] = d.Column
	}
	return cols
}

// table builds the table of the rows' data.
func (r *registry[R]) table(rows []R) *Table {
	out := make([][]any, len(rows))
	for i, x := range rows {
		row := make([]any, len(r.defs))
		for j, d := range r.defs {
			row[j] = d.value(x)
		}
		out[i] = row
	}
	return &Table{Name: r.name, Columns: r.columns(), Rows: out}
}

// uniq returns name, or name with a numeric suffix if names already has
// it, and adds the result to names.
func uniq(names map[string]bool, name string) string {
	n := name
	for i := 2; names[n]; i++ {
		n = name + "_" + strconv.Itoa(i)
	}
	names[n] = true
	return n
}
