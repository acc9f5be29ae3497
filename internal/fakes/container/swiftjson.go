package container

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The real CLI prints JSON with Foundation's JSONEncoder, which differs from
// encoding/json: it escapes every '/' as "\/" unless told not to, sorts
// keys only when asked (`--format json` asks, from 1.0.0), and writes an
// empty list or dictionary, never null. This file writes JSON that way,
// leaving strings, numbers and booleans to encoding/json (which, unlike
// Foundation, also escapes U+2028 and U+2029; no fixture or test has them).

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

// encode renders v as the release's compact `--format json` does: one line,
// sorted keys, and '/' escaped as "\/" until 1.4.1 made the shared renderer
// use .withoutEscapingSlashes (apple/container PR #2205).
func (c *cli) encode(v any) []byte {
	var buf bytes.Buffer
	writeJSON(&buf, v)
	if !c.v.atLeast(1, 4, 0) {
		// Outside strings JSON has no '/'.
		return bytes.ReplaceAll(buf.Bytes(), []byte("/"), []byte(`\/`))
	}
	return buf.Bytes()
}

func writeJSON(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case obj:
		buf.WriteByte('{')
		for i, p := range slices.SortedStableFunc(slices.Values(x), func(a, b kv) int { return strings.Compare(a.k, b.k) }) {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, p.k)
			buf.WriteByte(':')
			writeJSON(buf, p.v)
		}
		buf.WriteByte('}')
	case map[string]string:
		o := obj{}
		for k, v := range x {
			o = o.add(k, v)
		}
		writeJSON(buf, o)
	case []any:
		buf.WriteByte('[')
		for i, item := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, item)
		}
		buf.WriteByte(']')
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		writeJSON(buf, items)
	case string, bool, int, int64:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(x)
		buf.Truncate(buf.Len() - 1) // Encode's newline
	default:
		panic(fmt.Sprintf("swiftjson: cannot encode %T", v))
	}
}

// date renders t as JSONOptions' .iso8601 date strategy does.
func date(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
