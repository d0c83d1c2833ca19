package agent

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzRequestAppendJSON feeds hostile argv, environment, working
// directory and reason values (quotes, backslashes, control characters,
// U+2028, invalid UTF-8, JSON of their own such as `","uid":0,"x":"`)
// through the request's hand-written encoder: the result must be one
// valid JSON object that decodes to exactly what encoding/json's
// encoding of the same request decodes to, so no value can add, end or
// change a field on the way to the agent (a red-team pass; it held).
func FuzzRequestAppendJSON(f *testing.F) {
	for _, s := range []string{"", `","uid":0,"gid":0,"x":"`, "\"}\x00{", "\\", "\\\"", "\xff\xfe\xc3", "\xed\xa0\x80", "\u2028\u2029",
		"\x7f\x1b[2J", "\ufffd", strings.Repeat("\\u0022", 50)} {
		f.Add(s, s, s, -1, 1<<31)
	}
	f.Fuzz(func(t *testing.T, arg, env, cwd string, uid, gid int) {
		r := Request{Type: TypeExec, Args: []string{arg, cwd + arg}, Env: []string{env, "A=" + arg}, Cwd: cwd,
			UID: uid, GID: gid, Reason: env + cwd}
		got := r.AppendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("not JSON: %q", got)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b Request
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("AppendJSON decodes to\n%+v\nencoding/json's to\n%+v", a, b)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(got, &fields); err != nil {
			t.Fatal(err)
		}
		for k := range fields {
			switch k {
			case "type", "args", "env", "cwd", "uid", "gid", "reason":
			default:
				t.Fatalf("field %q appeared in %q", k, got)
			}
		}
	})
}
