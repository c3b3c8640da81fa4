package export

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet layout, chosen for readers of every age (pyarrow/pandas, R arrow,
// DuckDB, Spark): every column OPTIONAL (nullable) with a standard logical
// type, PLAIN encoding with RLE definition levels, version 1 data pages,
// Snappy compression, one row group per 1M rows. No dictionary or delta
// encodings, no nested types.
const rowGroupRows = 1 << 20

// parquetTypeName is the codebook's description of a column type in Parquet.
func parquetTypeName(t Type) string {
	switch t {
	case Integer:
		return "INT32 (INT(32, signed))"
	case Double:
		return "DOUBLE"
	case String:
		return "BYTE_ARRAY (STRING, UTF-8)"
	case Timestamp:
		return "INT64 (TIMESTAMP(MICROS, isAdjustedToUTC=true))"
	}
	return ""
}

func parquetNode(t Type) parquet.Node {
	var n parquet.Node
	switch t {
	case Integer:
		n = parquet.Int(32)
	case Double:
		n = parquet.Leaf(parquet.DoubleType)
	case String:
		n = parquet.String()
	case Timestamp:
		n = parquet.Timestamp(parquet.Microsecond)
	}
	return parquet.Optional(parquet.Encoded(n, &parquet.Plain))
}

// Schema returns t's Parquet schema, with the columns in the table's order.
func (t *Table) Schema() *parquet.Schema {
	g := make(orderedGroup, len(t.Columns))
	for i, c := range t.Columns {
		g[i] = &orderedField{Node: parquetNode(c.Type), name: c.Name, index: i}
	}
	return parquet.NewSchema(t.Name, g)
}

// WriteParquet writes t as a Parquet file (see the layout above). The file
// carries the table name and the codebook's column descriptions in its
// key-value metadata.
func WriteParquet(w io.Writer, t *Table) error {
	schema := t.Schema()
	cfg, err := parquet.NewWriterConfig(
		schema,
		parquet.Compression(&parquet.Snappy),
		parquet.DataPageVersion(1),
		parquet.CreatedBy("jitai export", "", ""),
		parquet.KeyValueMetadata("jitai.table", t.Name),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
	)
	if err != nil {
		return fmt.Errorf("writing %s Parquet: %w", t.Name, err)
	}
	pw := parquet.NewWriter(w, cfg)
	// Rows are written in batches whose values live in one reused slab:
	// WriteRows copies them into its column buffers.
	const batch = 1024
	ncol := len(t.Columns)
	slab := make([]parquet.Value, batch*ncol)
	buf := make([]parquet.Row, 0, batch)
	for i, row := range t.Rows {
		pr := parquet.Row(slab[len(buf)*ncol : (len(buf)+1)*ncol : (len(buf)+1)*ncol])
		for j, v := range row {
			pv, ok := parquetValue(v, t.Columns[j].Type)
			if !ok {
				return fmt.Errorf("writing %s Parquet: column %s is %s, but row %d holds a %T", t.Name, t.Columns[j].Name, t.Columns[j].Type, i+1, v)
			}
			pr[j] = pv.Level(0, defLevel(v), j)
		}
		buf = append(buf, pr)
		if len(buf) == batch || i == len(t.Rows)-1 {
			if _, err := pw.WriteRows(buf); err != nil {
				return fmt.Errorf("writing %s Parquet: %w", t.Name, err)
			}
			buf = buf[:0]
		}
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("writing %s Parquet: %w", t.Name, err)
	}
	return nil
}

func defLevel(v any) int {
	if v == nil {
		return 0
	}
	return 1
}

// parquetValue is v as a Parquet value of a column of type t; false when
// v is not of t's Go type (a column's type never bends to its values).
func parquetValue(v any, t Type) (parquet.Value, bool) {
	if v == nil {
		return parquet.NullValue(), true
	}
	switch x := v.(type) {
	case int64:
		return parquet.Int32Value(int32(x)), t == Integer
	case float64:
		return parquet.DoubleValue(x), t == Double
	case string:
		// The value shares the string's bytes, which nothing writes to.
		return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x))), t == String
	case time.Time:
		return parquet.Int64Value(x.UnixMicro()), t == Timestamp
	}
	return parquet.NullValue(), false
}

// ReadParquet reads a table written by WriteParquet back into values of
// the column types (for tests and tools). Columns are taken from the file.
func ReadParquet(r io.ReaderAt, size int64) (*Table, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("opening Parquet: %w", err)
	}
	name, _ := f.Lookup("jitai.table")
	t := &Table{Name: name}
	for _, fl := range f.Schema().Fields() {
		var typ Type
		switch {
		case fl.Type().Kind() == parquet.Int32:
			typ = Integer
		case fl.Type().Kind() == parquet.Double:
			typ = Double
		case fl.Type().Kind() == parquet.ByteArray:
			typ = String
		case fl.Type().Kind() == parquet.Int64 && isTimestamp(fl.Type()):
			typ = Timestamp
		default:
			return nil, fmt.Errorf("column %s has unexpected Parquet type %s", fl.Name(), fl.Type())
		}
		t.Columns = append(t.Columns, Column{Name: fl.Name(), Table: name, Type: typ, ParquetType: parquetTypeName(typ)})
	}
	rd := parquet.NewReader(f)
	defer rd.Close()
	rows := make([]parquet.Row, 256)
	for {
		n, err := rd.ReadRows(rows)
		for _, pr := range rows[:n] {
			row := make([]any, len(t.Columns))
			for _, v := range pr {
				j := v.Column()
				if v.IsNull() {
					continue
				}
				switch t.Columns[j].Type {
				case Integer:
					row[j] = int64(v.Int32())
				case Double:
					row[j] = v.Double()
				case String:
					row[j] = string(v.ByteArray())
				case Timestamp:
					row[j] = time.UnixMicro(v.Int64()).UTC()
				}
			}
			t.Rows = append(t.Rows, row)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading Parquet rows: %w", err)
		}
	}
	return t, nil
}

// orderedGroup is a Parquet group whose fields keep their given order
// (parquet.Group sorts them by name), so that the file's columns are in the
// codebook's order.
type orderedGroup []*orderedField

type orderedField struct {
	parquet.Node
	name  string
	index int
}

func (f *orderedField) Name() string { return f.name }

func (f *orderedField) Value(base reflect.Value) reflect.Value {
	if base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if base.Kind() == reflect.Struct && f.index < base.NumField() {
		return base.Field(f.index)
	}
	return reflect.Value{}
}

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) String() string              { return fmt.Sprintf("group (%d columns)", len(g)) }

func (g orderedGroup) Fields() []parquet.Field {
	out := make([]parquet.Field, len(g))
	for i, f := range g {
		out[i] = f
	}
	return out
}

func (g orderedGroup) GoType() reflect.Type {
	fields := make([]reflect.StructField, len(g))
	for i, f := range g {
		fields[i] = reflect.StructField{
			Name: "F" + strconv.Itoa(i),
			Type: f.GoType(),
			Tag:  reflect.StructTag(`parquet:` + strconv.Quote(f.name)),
		}
	}
	return reflect.StructOf(fields)
}

func isTimestamp(t parquet.Type) bool {
	lt := t.LogicalType()
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.TimestampType)
	return ok
}
