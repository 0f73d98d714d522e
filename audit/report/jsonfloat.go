package report

// report.json must hold numbers that were not measured (NaN) and unbounded
// ones (±Inf), which JSON cannot represent and encoding/json refuses. The
// encoder below walks the value with reflection, following encoding/json's
// rules for the types a report uses (struct fields by their json tag, with
// omitempty and "-"; maps with string keys in sorted order; slices;
// pointers; strings, bools, integers and floats), and writes a NaN or ±Inf
// float as null. Every finite float and every string is encoded by
// encoding/json itself, so the text is what json.Marshal would give. The
// decoder is its mirror: a null where the Go type has a float becomes NaN.

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/bnaudit/bnaudit/audit"
)

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// marshalJSON encodes v as indented JSON with NaN and ±Inf written as null.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeValue(&b, reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("report: indenting JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func encodeValue(b *bytes.Buffer, v reflect.Value) error {
	if !v.IsValid() {
		b.WriteString("null")
		return nil
	}
	t := v.Type()
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		(t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType)) {
		return encodeStd(b, v.Interface())
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b.WriteString("null")
			return nil
		}
		return encodeStd(b, v.Interface())
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return encodeStd(b, v.Interface())
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encodeValue(b, v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return encodeStd(b, v.Interface()) // base64, as encoding/json does
		}
		return encodeArray(b, v)
	case reflect.Array:
		return encodeArray(b, v)
	case reflect.Map:
		return encodeMap(b, v)
	case reflect.Struct:
		return encodeStruct(b, v)
	}
	return fmt.Errorf("report: cannot encode a %s as JSON", t)
}

// encodeStd encodes a leaf with encoding/json.
func encodeStd(b *bytes.Buffer, x any) error {
	data, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	b.Write(data)
	return nil
}

func encodeArray(b *bytes.Buffer, v reflect.Value) error {
	b.WriteByte('[')
	for i := range v.Len() {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := encodeValue(b, v.Index(i)); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}

func encodeMap(b *bytes.Buffer, v reflect.Value) error {
	if v.IsNil() {
		b.WriteString("null")
		return nil
	}
	if v.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("report: cannot encode a %s as JSON: keys are not strings", v.Type())
	}
	keys := v.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := encodeStd(b, k.String()); err != nil {
			return err
		}
		b.WriteByte(':')
		if err := encodeValue(b, v.MapIndex(k)); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	index     int
	name      string
	omitEmpty bool
	// required: the key must be present when the object is decoded
	// (tag option "required"): a number the gate reads must not default
	// to zero because a key went missing.
	required bool
}

// jsonFields returns the exported fields of a struct type with their JSON
// names, skipping "-". Embedded structs are not flattened (the report types
// have none).
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		o := strings.Split(opts, ",")
		out = append(out, jsonField{index: i, name: name, omitEmpty: slices.Contains(o, "omitempty"), required: slices.Contains(o, "required")})
	}
	return out
}

func encodeStruct(b *bytes.Buffer, v reflect.Value) error {
	b.WriteByte('{')
	first := true
	for _, f := range jsonFields(v.Type()) {
		fv := v.Field(f.index)
		if f.omitEmpty && isEmptyValue(fv) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if err := encodeStd(b, f.name); err != nil {
			return err
		}
		b.WriteByte(':')
		if err := encodeValue(b, fv); err != nil {
			return fmt.Errorf("%w (field %s)", err, f.name)
		}
	}
	b.WriteByte('}')
	return nil
}

// isEmptyValue is encoding/json's notion of empty for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// unmarshalJSON decodes data into the value dst points to, like
// json.Unmarshal, except that null where dst has a float sets NaN (the
// encoder's null stands for NaN or ±Inf). Unknown fields are ignored.
func unmarshalJSON(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("report: reading JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("report: reading JSON: data after the top-level value")
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("report: decoding JSON needs a non-nil pointer, not %T", dst)
	}
	return decodeValue(v.Elem(), tree, "")
}

func decodeValue(v reflect.Value, x any, path string) error {
	t := v.Type()
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		data, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("report: JSON at %s: %w", where(path), err)
		}
		return json.Unmarshal(data, v.Addr().Interface())
	}
	if x == nil {
		switch t.Kind() {
		case reflect.Float32, reflect.Float64:
			v.SetFloat(math.NaN())
		default:
			v.SetZero()
		}
		return nil
	}
	mismatch := func() error {
		return fmt.Errorf("report: JSON at %s: cannot put %T into a %s: %w", where(path), x, t, audit.ErrInvalidInput)
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		n, ok := x.(json.Number)
		if !ok {
			return mismatch()
		}
		f, err := n.Float64()
		if err != nil {
			return fmt.Errorf("report: JSON at %s: %w", where(path), err)
		}
		v.SetFloat(f)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := x.(json.Number)
		if !ok {
			return mismatch()
		}
		i, err := n.Int64()
		if err != nil || v.OverflowInt(i) {
			return fmt.Errorf("report: JSON at %s: %s is not a %s", where(path), n, t)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		n, ok := x.(json.Number)
		if !ok {
			return mismatch()
		}
		if _, err := fmt.Sscan(n.String(), &u); err != nil || v.OverflowUint(u) {
			return fmt.Errorf("report: JSON at %s: %s is not a %s", where(path), n, t)
		}
		v.SetUint(u)
	case reflect.Bool:
		bv, ok := x.(bool)
		if !ok {
			return mismatch()
		}
		v.SetBool(bv)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return mismatch()
		}
		v.SetString(s)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := decodeValue(p.Elem(), x, path); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Slice:
		arr, ok := x.([]any)
		if !ok {
			return mismatch()
		}
		s := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			if err := decodeValue(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Map:
		obj, ok := x.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			return mismatch()
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for k, e := range obj {
			ev := reflect.New(t.Elem()).Elem()
			if err := decodeValue(ev, e, path+"."+k); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		v.Set(m)
	case reflect.Struct:
		obj, ok := x.(map[string]any)
		if !ok {
			return mismatch()
		}
		for _, f := range jsonFields(t) {
			e, ok := obj[f.name]
			if !ok {
				// encoding/json matches names case-insensitively too.
				for k, ev := range obj {
					if strings.EqualFold(k, f.name) {
						e, ok = ev, true
						break
					}
				}
			}
			if f.required && (!ok || (e == nil && v.Field(f.index).Kind() == reflect.Struct)) {
				return fmt.Errorf("report: JSON at %s: %q is missing or null: %w", where(path), f.name, audit.ErrInvalidInput)
			}
			if ok {
				if err := decodeValue(v.Field(f.index), e, path+"."+f.name); err != nil {
					return err
				}
			}
		}
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return mismatch()
		}
		v.Set(reflect.ValueOf(x))
	default:
		return mismatch()
	}
	return nil
}

func where(path string) string {
	if path == "" {
		return "the top level"
	}
	return strings.TrimPrefix(path, ".")
}
