package logsafe

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Core wraps a zap core so that the message and every string-valued field of
// each entry (strings, byte strings, Stringers, errors, and strings or string
// slices given as zap.Any) are escaped with String before they are encoded.
// Wrapping a core that is already wrapped returns it unchanged.
func Core(inner zapcore.Core) zapcore.Core {
	if _, ok := inner.(*core); ok {
		return inner
	}

	return &core{inner: inner}
}

// Wrap is the zap option that applies Core to a logger.
func Wrap() zap.Option { return zap.WrapCore(Core) }

type core struct{ inner zapcore.Core }

func (c *core) Enabled(l zapcore.Level) bool { return c.inner.Enabled(l) }

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	return &core{inner: c.inner.With(escapeFields(fields))}
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}

	return ce
}

func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = String(e.Message)

	return c.inner.Write(e, escapeFields(fields)) //nolint:wrapcheck // a core passes its inner core's error on
}

func (c *core) Sync() error { return c.inner.Sync() } //nolint:wrapcheck // as Write

// escapeFields returns fields with their string values escaped; fields itself
// (not a copy) when none needs it.
func escapeFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field

	for i, f := range fields {
		g, changed := escapeField(f)
		if !changed {
			if out != nil {
				out[i] = f
			}

			continue
		}

		if out == nil {
			out = make([]zapcore.Field, len(fields))
			copy(out, fields[:i])
		}

		out[i] = g
	}

	if out == nil {
		return fields
	}

	return out
}

// escapeField returns f with its value escaped, and whether that changed it.
func escapeField(f zapcore.Field) (zapcore.Field, bool) {
	var s string

	switch f.Type { //nolint:exhaustive // the other types carry no text

	case zapcore.StringType:
		s = f.String
	case zapcore.ByteStringType:
		b, _ := f.Interface.([]byte)
		s = string(b)
	case zapcore.StringerType:
		s = stringOf(f.Interface)
	case zapcore.ErrorType:
		err, ok := f.Interface.(error)
		if !ok || err == nil {
			return f, false
		}

		s = err.Error()
	case zapcore.ReflectType:
		return escapeReflect(f)
	case zapcore.ArrayMarshalerType:
		if m, ok := f.Interface.(zapcore.ArrayMarshaler); ok {
			f.Interface = safeArray{m}

			return f, true
		}

		return f, false
	case zapcore.ObjectMarshalerType, zapcore.InlineMarshalerType:
		if m, ok := f.Interface.(zapcore.ObjectMarshaler); ok {
			f.Interface = safeObject{m}

			return f, true
		}

		return f, false
	default:
		return f, false
	}

	if f.Type == zapcore.StringType && Safe(s) {
		return f, false
	}

	return zap.String(f.Key, String(s)), true
}

// escapeReflect escapes a string given to zap.Reflect (zap.Any turns strings,
// string slices, errors and Stringers into the types above).
func escapeReflect(f zapcore.Field) (zapcore.Field, bool) {
	if v, ok := f.Interface.(string); ok {
		return zap.String(f.Key, String(v)), !Safe(v)
	}

	return f, false
}

// safeArray and safeObject marshal a zap array or object (zap.Strings, a
// slog group) through encoders that escape the strings added to them.
type (
	safeArray  struct{ m zapcore.ArrayMarshaler }
	safeObject struct{ m zapcore.ObjectMarshaler }
)

func (a safeArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	return a.m.MarshalLogArray(arrayEncoder{enc}) //nolint:wrapcheck // the marshaler's own error
}

func (o safeObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	return o.m.MarshalLogObject(objectEncoder{enc}) //nolint:wrapcheck // as above
}

type arrayEncoder struct{ zapcore.ArrayEncoder }

func (e arrayEncoder) AppendString(s string)     { e.ArrayEncoder.AppendString(String(s)) }
func (e arrayEncoder) AppendByteString(b []byte) { e.ArrayEncoder.AppendString(String(string(b))) }

func (e arrayEncoder) AppendArray(m zapcore.ArrayMarshaler) error {
	return e.ArrayEncoder.AppendArray(safeArray{m}) //nolint:wrapcheck // the marshaler's own error
}

func (e arrayEncoder) AppendObject(m zapcore.ObjectMarshaler) error {
	return e.ArrayEncoder.AppendObject(safeObject{m}) //nolint:wrapcheck // as above
}

func (e arrayEncoder) AppendReflected(v any) error {
	if s, ok := v.(string); ok {
		e.AppendString(s)

		return nil
	}

	return e.ArrayEncoder.AppendReflected(v) //nolint:wrapcheck // as above
}

type objectEncoder struct{ zapcore.ObjectEncoder }

func (e objectEncoder) AddString(k, v string) { e.ObjectEncoder.AddString(k, String(v)) }
func (e objectEncoder) AddByteString(k string, b []byte) {
	e.ObjectEncoder.AddString(k, String(string(b)))
}

func (e objectEncoder) AddArray(k string, m zapcore.ArrayMarshaler) error {
	return e.ObjectEncoder.AddArray(k, safeArray{m}) //nolint:wrapcheck // the marshaler's own error
}

func (e objectEncoder) AddObject(k string, m zapcore.ObjectMarshaler) error {
	return e.ObjectEncoder.AddObject(k, safeObject{m}) //nolint:wrapcheck // as above
}

func (e objectEncoder) AddReflected(k string, v any) error {
	if s, ok := v.(string); ok {
		e.AddString(k, s)

		return nil
	}

	return e.ObjectEncoder.AddReflected(k, v) //nolint:wrapcheck // as above
}

// stringOf calls a Stringer as zap would, a panic included in the text.
func stringOf(v any) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("<PANIC=%v>", r)
		}
	}()

	if st, ok := v.(fmt.Stringer); ok {
		return st.String()
	}

	return fmt.Sprint(v)
}
