package container

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// The real CLI prints JSON with Foundation's JSONEncoder, which differs from
// encoding/json: it escapes every '/' as "\/" unless told not to, and sorts
// keys only when asked (`--format json` asks, from 1.0.0). This file writes
// JSON that way.

// obj is a JSON object; absent optionals are simply not added
// (encodeIfPresent). Keys are written sorted.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) add(k string, v any) obj { return append(o, kv{k, v}) }

// addIf adds the key only when cond holds (encodeIfPresent).
func (o obj) addIf(cond bool, k string, v any) obj {
	if cond {
		return o.add(k, v)
	}
	return o
}

type encoder struct {
	escapeSlashes bool
	buf           bytes.Buffer
}

// encodeSwift renders v as the CLI's compact `--format json` does: one line,
// sorted keys, '/' escaped when escapeSlashes is set.
func encodeSwift(v any, escapeSlashes bool) []byte {
	e := &encoder{escapeSlashes: escapeSlashes}
	e.value(v)
	return e.buf.Bytes()
}

func (e *encoder) value(v any) {
	switch x := v.(type) {
	case obj:
		keys := append(obj(nil), x...)
		sort.SliceStable(keys, func(i, j int) bool { return keys[i].k < keys[j].k })
		e.buf.WriteByte('{')
		for i, p := range keys {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.str(p.k)
			e.buf.WriteByte(':')
			e.value(p.v)
		}
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
		e.value(o)
	case []any:
		e.buf.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.value(item)
		}
		e.buf.WriteByte(']')
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		e.value(items)
	case string:
		e.str(x)
	case bool:
		e.buf.WriteString(strconv.FormatBool(x))
	case int:
		e.buf.WriteString(strconv.Itoa(x))
	case int64:
		e.buf.WriteString(strconv.FormatInt(x, 10))
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
			if e.escapeSlashes {
				e.buf.WriteByte('\\')
			}
			e.buf.WriteByte('/')
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

// date renders t as JSONOptions' .iso8601 date strategy does.
func date(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
