package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decode decodes data over dst, a pointer to a struct such as Config. It returns an error only for a TOML syntax
// error; every other problem (a value of the wrong type, an unknown key) goes
// to p, so that one mistake doesn't hide the next.
//
// toml.Decode straight into a Config would stop at the first value of the
// wrong type. So the file is first read as tables of toml.Primitive, and each
// key is then decoded on its own into the field with that toml tag. Keys that
// match no field are the unknown ones: MetaData.Undecoded can't tell them
// here, because reading a table as a map marks all of its keys decoded.
func decode(data []byte, dst any, p *problems) error {
	var top map[string]toml.Primitive

	md, err := toml.Decode(string(data), &top)
	if err != nil {
		if pe, ok := errors.AsType[toml.ParseError](err); ok {
			return &syntaxError{file: p.file, err: pe}
		}

		return fmt.Errorf("%s%w", p.prefix(), err)
	}

	d := decoder{md: &md, p: p}
	d.table(top, reflect.ValueOf(dst).Elem(), scope{})

	return nil
}

// syntaxError is a TOML syntax error, shown with the offending line.
type syntaxError struct {
	file string
	err  toml.ParseError
}

func (e *syntaxError) Error() string {
	msg := strings.TrimRight(e.err.ErrorWithPosition(), "\n")
	if e.file == "" {
		return msg
	}

	return e.file + ": " + msg
}

func (e *syntaxError) Unwrap() error { return e.err }

// scope is where a table sits in the file, for naming its keys in messages.
type scope struct {
	table string // dotted path of a table: "" at the top, "log", "tls"
	item  string // set for an entry of an array of tables: `users[1] "alice"`
}

// key names key of this table the way messages do: "listen", "log.level",
// `users[1] "alice": home`.
func (s scope) key(key string) string {
	switch {
	case s.item != "":
		return s.item + ": " + key
	case s.table != "":
		return s.table + "." + key
	default:
		return key
	}
}

// decoder decodes a file key by key, reporting problems to p.
type decoder struct {
	md *toml.MetaData
	p  *problems
}

// table decodes each key of t into the field of dst (a struct) with that
// toml tag, in the order of the fields, then reports the keys that match none.
// A key that fails to decode leaves its field as it was (the default).
func (d *decoder) table(t map[string]toml.Primitive, dst reflect.Value, s scope) {
	known := map[string]bool{}

	for i := range dst.NumField() {
		key := tomlKey(dst.Type().Field(i))
		if key == "" {
			continue
		}

		known[key] = true

		prim, ok := t[key]
		if !ok {
			continue
		}

		field := dst.Field(i)

		switch {
		case isTableType(field.Type()):
			d.subtable(prim, field, s.key(key))
		case isArrayOfTablesType(field.Type()):
			d.array(prim, field, key)
		case isTextArrayType(field.Type()):
			d.textArray(prim, field, s.key(key))
		default:
			d.value(prim, field, s.key(key))
		}
	}

	for _, key := range slices.Sorted(maps.Keys(t)) {
		if known[key] {
			continue
		}

		if s.item != "" {
			d.p.unknown(s.item, key)
		} else {
			d.p.unknown("", s.key(key))
		}
	}
}

// subtable decodes a table such as [log] into dst.
func (d *decoder) subtable(prim toml.Primitive, dst reflect.Value, path string) {
	// Checked first: PrimitiveDecode into a map quietly accepts a non-table.
	var t map[string]toml.Primitive
	if !isTable(d.raw(prim)) || d.md.PrimitiveDecode(prim, &t) != nil {
		d.p.add(path, d.typeError(prim, dst.Type()))

		return
	}

	d.table(t, dst, scope{table: path})
}

// array decodes an array of tables such as [[users]] into dst, a slice.
// Its entries are named by index and by their name key, when they have one.
func (d *decoder) array(prim toml.Primitive, dst reflect.Value, key string) {
	var ts []map[string]toml.Primitive
	if !isArrayOfTables(d.raw(prim)) || d.md.PrimitiveDecode(prim, &ts) != nil {
		d.p.add(key, d.typeError(prim, dst.Type()))

		return
	}

	items := reflect.MakeSlice(dst.Type(), len(ts), len(ts))

	for i, t := range ts {
		var name string
		if p, ok := t["name"]; ok {
			_ = d.md.PrimitiveDecode(p, &name) // a name of the wrong type is reported by table
		}

		d.table(t, items.Index(i), scope{item: itemLabel(key, i, name)})
	}

	dst.Set(items)
}

// value decodes a single value into dst, which keeps its value on failure.
// An optional value (a pointer, such as a user's session_download) given as
// "" is skipped, so it stays nil as if the key were absent.
func (d *decoder) value(prim toml.Primitive, dst reflect.Value, path string) {
	if dst.Kind() == reflect.Pointer && d.raw(prim) == "" {
		return
	}

	v := reflect.New(dst.Type())
	if err := d.md.PrimitiveDecode(prim, v.Interface()); err != nil {
		d.p.add(path, d.typeError(prim, dst.Type()))

		return
	}

	dst.Set(v.Elem())
}

// textArray decodes an array of strings into dst, a slice of a type that
// reads itself from text (see isTextArrayType), and names each bad item by
// its index: `ban.allow[2]: "10.0.0.300" is not an IP address or network`.
// With any bad item, dst keeps its value.
func (d *decoder) textArray(prim toml.Primitive, dst reflect.Value, path string) {
	items, ok := d.raw(prim).([]any)
	if !ok {
		d.p.addf(path, "want %s, got %s", describeType(dst.Type()), describeValue(d.raw(prim)))

		return
	}

	out := reflect.MakeSlice(dst.Type(), len(items), len(items))
	bad := false

	for i, item := range items {
		key := fmt.Sprintf("%s[%d]", path, i)

		s, isString := item.(string)
		if !isString {
			d.p.addf(key, "want a string, got %s", describeValue(item))
			bad = true

			continue
		}

		if err := unmarshalItem(out.Index(i), s); err != nil {
			d.p.add(key, err)
			bad = true
		}
	}

	if !bad {
		dst.Set(out)
	}
}

// unmarshalItem sets v, an item of a text array, from its text.
func unmarshalItem(v reflect.Value, text string) error {
	u, _ := reflect.TypeAssert[encoding.TextUnmarshaler](v.Addr()) // isTextArrayType checked it

	return u.UnmarshalText([]byte(text))
}

// typeError explains why prim does not fit a Go value of type want, in TOML
// words: "want an integer, got a string".
func (d *decoder) typeError(prim toml.Primitive, want reflect.Type) error {
	got := d.raw(prim)

	if want.Kind() == reflect.Pointer {
		want = want.Elem()
	}

	if want == sizeType { // say why, in the words of UnmarshalTOML
		var s Size
		if err := s.UnmarshalTOML(got); err != nil {
			return err
		}
	}

	if want == durationType {
		switch g := got.(type) {
		case int64, float64:
			return errors.New(`want a duration string such as "15m", got a number`)
		case string: // a string, but not a duration: say why
			var dur Duration

			return dur.UnmarshalText([]byte(g))
		}
	}

	// Another type written as text, such as TLSMode: a string, but not
	// one it knows, says why; anything else is not a string.
	if u, ok := reflect.TypeAssert[encoding.TextUnmarshaler](reflect.New(want)); ok && want != durationType {
		s, isString := got.(string)
		if !isString {
			return fmt.Errorf("want a string, got %s", describeValue(got))
		}

		if err := u.UnmarshalText([]byte(s)); err != nil {
			return err
		}
	}

	return fmt.Errorf("want %s, got %s", describeType(want), describeValue(got))
}

// raw returns prim as the TOML library reads it without a destination:
// string, int64, float64, bool, time.Time, map[string]any, []any or
// []map[string]any.
func (d *decoder) raw(prim toml.Primitive) any {
	var v any
	_ = d.md.PrimitiveDecode(prim, &v) // decoding into any cannot fail

	return v
}

func isTable(v any) bool {
	_, ok := v.(map[string]any)

	return ok
}

// isArrayOfTables accepts [[users]] tables and arrays of inline tables.
func isArrayOfTables(v any) bool {
	switch v := v.(type) {
	case []map[string]any:
		return true
	case []any:
		for _, e := range v {
			if !isTable(e) {
				return false
			}
		}

		return true
	default:
		return false
	}
}

var (
	durationType      = reflect.TypeFor[Duration]()
	sizeType          = reflect.TypeFor[Size]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isTableType reports whether a field of type t holds a TOML table such as
// [log]. Duration and Size are structs, but hold a single value.
func isTableType(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType && t != sizeType
}

// isArrayOfTablesType reports whether a field of type t holds an array of
// tables such as [[users]]: a slice of structs that are not read from text.
func isArrayOfTablesType(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !isTextArrayType(t)
}

// isTextArrayType reports whether a field of type t holds an array of
// strings, each read into a value that parses itself, such as ban.allow's
// networks. A plain []string is not one: its items need no parsing.
func isTextArrayType(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && reflect.PointerTo(t.Elem()).Implements(textUnmarshalType)
}

// tomlKey returns the key of a struct field from its toml tag, or "" for none.
func tomlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if key == "-" {
		return ""
	}

	return key
}

// itemLabel names entry i of an array of tables: `users[1] "alice"`, or
// `users[1]` while it has no name.
func itemLabel(key string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s[%d]", key, i)
	}

	return fmt.Sprintf("%s[%d] %q", key, i, name)
}

// describeType says in TOML words what a Go value of type t is decoded from.
func describeType(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration string such as "15m"`
	case sizeType, reflect.PointerTo(sizeType):
		return `a size such as "100MiB"`
	}

	switch k := t.Kind(); {
	case k == reflect.String:
		return "a string"
	case k == reflect.Int:
		return "an integer"
	case k == reflect.Bool:
		return "a boolean (true or false)"
	case k == reflect.Struct:
		return "a table"
	case isTextArrayType(t) || (k == reflect.Slice && t.Elem().Kind() == reflect.String):
		return "an array of strings"
	case isArrayOfTablesType(t):
		return "an array of tables"
	case k == reflect.Slice && t.Elem().Kind() == reflect.Int:
		return "an array of integers"
	default:
		return t.String()
	}
}

// describeValue says in TOML words what a decoded TOML value is:
// "a string", "an array of integers", "an array mixing integers and tables".
func describeValue(v any) string {
	if _, ok := v.([]map[string]any); ok {
		return "an array of tables"
	}

	items, ok := v.([]any)
	if !ok {
		kind := tomlKind(v)
		if strings.IndexAny(kind, "aeiou") == 0 {
			return "an " + kind
		}

		return "a " + kind
	}

	var kinds []string
	for _, item := range items {
		if k := tomlKind(item) + "s"; !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}

	switch len(kinds) {
	case 0:
		return "an empty array"
	case 1:
		return "an array of " + kinds[0]
	default:
		return "an array mixing " + strings.Join(kinds, " and ")
	}
}

// tomlKind names the type of a decoded TOML value.
func tomlKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "date-time"
	case map[string]any:
		return "table"
	case []map[string]any, []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}
