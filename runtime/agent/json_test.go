package agent

import (
	"encoding/json"
	"reflect"
	"testing"
)

// decode is what the agent makes of an encoded request.
func decode(t *testing.T, b []byte) Request {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not JSON: %q", b)
	}
	var r Request
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// AppendJSON decodes to what encoding/json's encoding decodes to, for
// strings of every kind (invalid UTF-8 included: both make it U+FFFD).
func TestRequestAppendJSON(t *testing.T) {
	odd := []string{"", "plain", `quote " and \ backslash`, "nl\n cr\r tab\t bell\a nul\x00 esc\x1b del\x7f",
		"<html> & </html>", "line\u2028para\u2029", "é ü ß 漢字 🎉", "bad \xff\xfe utf-8 \xc3", "\xe2\x82", "/path/to some/dir"}
	for _, r := range []Request{
		{},
		{Type: TypeExec, Args: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/me"}, Cwd: "/home/me", UID: 1001, GID: 1001},
		{Type: TypeExec, Args: odd, Env: odd, Cwd: odd[3], UID: 0, GID: 0, Terminal: true, Rows: 50, Cols: 200},
		{Type: TypeSignal, Signal: 15},
		{Type: TypeStop, Reason: "devbox rm -f \"dev\"\n"},
		{Type: TypeExec, UID: -1, GID: 1 << 40, Rows: 65535, Cols: 1},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := decode(t, r.AppendJSON(nil)), decode(t, want); !reflect.DeepEqual(got, exp) {
			t.Errorf("AppendJSON(%+v) decodes to\n%+v\nencoding/json's to\n%+v", r, got, exp)
		}
	}
}

// Every field of Request is encoded: a field added to the type but not
// to AppendJSON would be lost on the way to the agent.
func TestRequestAppendJSONEveryField(t *testing.T) {
	var r Request
	v := reflect.ValueOf(&r).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Uint16:
			f.SetUint(uint64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"a" + v.Type().Field(i).Name, "b"}))
		default:
			t.Fatalf("field %s of kind %s: teach this test (and AppendJSON) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	if got := decode(t, r.AppendJSON(nil)); !reflect.DeepEqual(got, r) {
		t.Errorf("AppendJSON lost a field:\n got %+v\nwant %+v", got, r)
	}
}

// TestReplyQuickDecode: the replies the agent sends are read without
// encoding/json's reflection, to exactly what json.Unmarshal makes of
// them; what QuickDecode leaves to encoding/json it does not touch.
func TestReplyQuickDecode(t *testing.T) {
	for _, r := range []Reply{
		{Type: TypeStarted, PID: 42},
		{Type: TypeExit, Code: 130, Message: "box dev stopped (devbox stop)"},
		{Type: TypeOK, Sessions: 3, InitPID: 123456, Started: 1796690000},
		{Type: TypeError, Code: -1, Message: "ümlaut and \x7f stay"},
		{},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got Reply
		if !got.QuickDecode(b) || got != r {
			t.Errorf("QuickDecode(%s) = %+v, want %+v", b, got, r)
		}
	}
	for _, s := range []string{
		`{"type":"exit","message":"a \"quoted\" word"}`, // an escape
		`{"type":"exit","message":"<b>"}`,               // json.Marshal escapes < as \u003c: never seen, but read right
		`{"type": "exit"}`, `{"Type":"exit"}`, `{"type":null}`, `{"code":1.0}`, `{"code":01}`, `{"code":+1}`,
		`{"code":99999999999999999999}`, `{"type":"exit",}`, `{"type":"exit"`, `{"type":"ex` + "\xff" + `"}`,
		`{"type":"exit","other":1}`, `[]`, ``, `{"code":-}`,
	} {
		var q, j Reply
		q.Code = 7
		ok := q.QuickDecode([]byte(s))
		jerr := json.Unmarshal([]byte(s), &j)
		switch {
		case !ok && q.Code != 7:
			t.Errorf("QuickDecode(%s) refused but changed the reply: %+v", s, q)
		case ok && (jerr != nil || q != Reply{Code: 7}.merge(j)):
			t.Errorf("QuickDecode(%s) = %+v; encoding/json: %+v, %v", s, q, j, jerr)
		}
	}
}

// merge is j decoded over r as json.Unmarshal would: the fields j's input
// set (non-zero here) replace r's.
func (r Reply) merge(j Reply) Reply {
	if j.Type != "" {
		r.Type = j.Type
	}
	if j.Message != "" {
		r.Message = j.Message
	}
	if j.Code != 0 {
		r.Code = j.Code
	}
	return r
}

// FuzzReplyQuickDecode: whatever QuickDecode accepts, json.Unmarshal
// reads to the same reply.
func FuzzReplyQuickDecode(f *testing.F) {
	for _, s := range []string{`{"type":"exit","code":0}`, `{"type":"started","pid":5}`, `{"code":-3,"message":"x"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var q, j Reply
		if !q.QuickDecode(b) {
			if q != (Reply{}) {
				t.Fatalf("refused %q but changed the reply", b)
			}
			return
		}
		if err := json.Unmarshal(b, &j); err != nil || q != j {
			t.Fatalf("QuickDecode(%q) = %+v; encoding/json: %+v, %v", b, q, j, err)
		}
	})
}
