package agent

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends r's JSON encoding to b: the object encoding/json
// makes of it (the same field names, empty optional fields left out,
// strings decoding to the same values) without reflection. A client
// sends one request per process; encoding/json's first use took it
// about 0.3 ms (internal/seqpacket uses this instead).
func (r Request) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, r.Type)
	if len(r.Args) > 0 {
		b = append(b, `,"args":`...)
		b = appendStrings(b, r.Args)
	}
	if len(r.Env) > 0 {
		b = append(b, `,"env":`...)
		b = appendStrings(b, r.Env)
	}
	if r.Cwd != "" {
		b = append(b, `,"cwd":`...)
		b = appendString(b, r.Cwd)
	}
	b = append(b, `,"uid":`...)
	b = strconv.AppendInt(b, int64(r.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendInt(b, int64(r.GID), 10)
	if r.Terminal {
		b = append(b, `,"terminal":true`...)
	}
	if r.Rows != 0 {
		b = append(b, `,"rows":`...)
		b = strconv.AppendUint(b, uint64(r.Rows), 10)
	}
	if r.Cols != 0 {
		b = append(b, `,"cols":`...)
		b = strconv.AppendUint(b, uint64(r.Cols), 10)
	}
	if r.Signal != 0 {
		b = append(b, `,"signal":`...)
		b = strconv.AppendInt(b, int64(r.Signal), 10)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r.Reason)
	}
	return append(b, '}')
}

func appendStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string. As with encoding/json, a
// byte that is not part of valid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
