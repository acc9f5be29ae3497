package container

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The real CLI prints JSON with Foundation's JSONEncoder, which differs from
// encoding/json: it escapes every '/' as "\/", writes Doubles with a decimal
// point (794138400.0), keeps struct declaration order unless .sortedKeys is
// set, and pretty-prints as `"key" : value` with two-space indents. This file
// writes JSON that way.

// obj is a JSON object whose keys keep the order they were added in (the
// Swift struct's declaration order); absent optionals are simply not added.
type obj []kv

type kv struct {
	k string
	v any
}

// double is a Swift Double; it always prints with a decimal point.
type double float64

func (o obj) add(k string, v any) obj { return append(o, kv{k, v}) }

// addIf adds the key only when cond holds (encodeIfPresent).
func (o obj) addIf(cond bool, k string, v any) obj {
	if cond {
		return o.add(k, v)
	}
	return o
}

type encoder struct {
	sorted, pretty bool
	buf            bytes.Buffer
}

// encodeSwift renders v as the CLI would: sorted keys from 1.0.0 on,
// pretty-printed for 1.x inspect commands.
func encodeSwift(v any, sorted, pretty bool) []byte {
	e := &encoder{sorted: sorted, pretty: pretty}
	e.value(v, 0)
	return e.buf.Bytes()
}

func (e *encoder) newline(depth int) {
	if e.pretty {
		e.buf.WriteByte('\n')
		e.buf.WriteString(strings.Repeat("  ", depth))
	}
}

func (e *encoder) value(v any, depth int) {
	switch x := v.(type) {
	case obj:
		keys := x
		if e.sorted {
			keys = append(obj(nil), x...)
			sort.SliceStable(keys, func(i, j int) bool { return keys[i].k < keys[j].k })
		}
		if len(keys) == 0 {
			e.buf.WriteString("{}")
			return
		}
		e.buf.WriteByte('{')
		for i, p := range keys {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.newline(depth + 1)
			e.str(p.k)
			if e.pretty {
				e.buf.WriteString(" : ")
			} else {
				e.buf.WriteByte(':')
			}
			e.value(p.v, depth+1)
		}
		e.newline(depth)
		e.buf.WriteByte('}')
	case map[string]string:
		o := obj{}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o = o.add(k, x[k])
		}
		e.value(o, depth)
	case []any:
		if len(x) == 0 {
			e.buf.WriteString("[]")
			return
		}
		e.buf.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.newline(depth + 1)
			e.value(item, depth+1)
		}
		e.newline(depth)
		e.buf.WriteByte(']')
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		e.value(items, depth)
	case string:
		e.str(x)
	case bool:
		e.buf.WriteString(strconv.FormatBool(x))
	case int:
		e.buf.WriteString(strconv.Itoa(x))
	case int64:
		e.buf.WriteString(strconv.FormatInt(x, 10))
	case double:
		s := strconv.FormatFloat(float64(x), 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		e.buf.WriteString(s)
	default:
		panic(fmt.Sprintf("swiftjson: cannot encode %T", v))
	}
}

func (e *encoder) str(s string) {
	e.buf.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			e.buf.WriteString(`\"`)
		case '\\':
			e.buf.WriteString(`\\`)
		case '/':
			e.buf.WriteString(`\/`)
		case '\n':
			e.buf.WriteString(`\n`)
		case '\r':
			e.buf.WriteString(`\r`)
		case '\t':
			e.buf.WriteString(`\t`)
		case '\b':
			e.buf.WriteString(`\b`)
		case '\f':
			e.buf.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&e.buf, `\u%04x`, r)
			} else if r == utf8.RuneError {
				e.buf.WriteString(`\ufffd`)
			} else {
				e.buf.WriteRune(r)
			}
		}
	}
	e.buf.WriteByte('"')
}

// reference2001 is Foundation's reference date; JSONEncoder's default date
// strategy writes seconds since it.
var reference2001 = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// date renders t with the release's date strategy: a Double of seconds since
// 2001-01-01 through 0.12.3, ISO 8601 from 1.0.0.
func (v ver) date(t time.Time) any {
	if v.atLeast(1, 0, 0) {
		return t.UTC().Format("2006-01-02T15:04:05Z")
	}
	return double(float64(t.Sub(reference2001).Microseconds()) / 1e6)
}
