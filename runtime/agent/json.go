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

// QuickDecode reads data into r when it is a JSON object as encoding/json
// writes a Reply — no white space, the keys spelled as the tags, values
// that are integers without a sign or leading zero but "-", strings
// without escapes and of valid UTF-8 — to what json.Unmarshal makes of
// it. Anything else (an escape in a message, another key, null) reports
// false and leaves r as it was: json.Unmarshal reads it
// (internal/seqpacket).
func (r *Reply) QuickDecode(data []byte) bool {
	d := *r
	b := data
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	b = b[1 : len(b)-1]
	for len(b) > 0 {
		key, rest, ok := quickString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		b = rest[1:]
		switch key {
		case "type", "message":
			v, rest, ok := quickString(b)
			if !ok {
				return false
			}
			if key == "type" {
				d.Type = v
			} else {
				d.Message = v
			}
			b = rest
		case "pid", "code", "sessions", "initPid", "started":
			v, rest, ok := quickInt(b)
			if !ok {
				return false
			}
			switch key {
			case "pid":
				d.PID = int(v)
			case "code":
				d.Code = int(v)
			case "sessions":
				d.Sessions = int(v)
			case "initPid":
				d.InitPID = int(v)
			default:
				d.Started = v
			}
			b = rest
		default:
			return false
		}
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	*r = d
	return true
}

// quickString reads a JSON string without escapes at the start of b.
func quickString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s := b[1:i]
			if !utf8.Valid(s) {
				return "", nil, false
			}
			return string(s), b[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		}
	}
	return "", nil, false
}

// quickInt reads a JSON integer (-?(0|[1-9][0-9]*)) that fits an int64 at
// the start of b; not a fraction or an exponent.
func quickInt(b []byte) (int64, []byte, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	switch {
	case i == start, b[start] == '0' && i > start+1:
		return 0, nil, false
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return 0, nil, false
	}
	v, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil || v != int64(int(v)) {
		return 0, nil, false
	}
	return v, b[i:], true
}
