package seenhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// plainSeeds are bodies for decodePlain beside bodySeeds: nulls, empty
// lists, repeated keys, nested unknown values, numbers and literals
// everywhere, Meta's typing_indicator.
var plainSeeds = []string{
	`{"session":null,"chatId":"15551234567","messageId":null,"messageIds":null}`,
	`{"session":"demo","chatId":"15551234567","messageIds":[]}`,
	`{"session":"demo","messageIds":[null,"A",null]}`,
	`{"session":"demo","session":null}`, `{"messageIds":["A"],"messageIds":null}`, `{"messageId":"A","messageId":null}`,
	`{"x":[1,-2.5e+3,true,false,null,{"y":{"z":[[]]}},"s"],"session":"demo","n":0,"t":true,"f":false,"o":{}}`,
	` { "session" : "demo" , "chatId" : "15551234567" , "messageIds" : [ "A" , "B" ] } ` + "\r\n",
	`{"async":true,"typing":false}`, `{"async":null,"typing":null}`, `{"async":"true"}`, `{"async":1}`,
	`{"typing_indicator":{"type":"text"}}`, `{"typing_indicator":{"type":null,"x":[1]}}`, `{"typing_indicator":{}}`,
	`{"typing_indicator":null}`, `{"typing_indicator":{"TYPE":"text"}}`, `{"typing_indicator":{"type":"text","type":"no"}}`,
	`{"typing_indicator":[]}`, `{"typing_indicator":{"type":1}}`, `{"Type":"read"}`, `{"type":"played","TYPE":"read"}`,
	`{"session":"a\"b"}`, `{"x":"\"","session":"demo"}`, `{"session":"dé"}`, `{"session":["demo"]}`, `{"messageIds":[1]}`,
	`{"messageIds":{}}`, `{"chatId":123}`, `{}`, `{"":""}`, `{"session":"demo"}   x`,
}

// malformedBodies are bodies that are not JSON, most of which a decoder
// that relied on json.Valid to have checked them would take, with the
// answer's message for each (encoding/json's account of the fault): a
// missing, leading or trailing comma, a control character in a string, a
// bad number or literal, a bracket that does not match, an end too soon.
var malformedBodies = []struct{ body, msg string }{
	{`{"session":"demo" "chatId":"15551234567@c.us"}`, "the body is not valid JSON (at byte 19)"},
	{`{,"session":"demo"}`, "the body is not valid JSON (at byte 2)"},
	{`{"session":"demo",}`, "the body is not valid JSON (at byte 19)"},
	{`{"messageIds":["A" "B"]}`, "the body is not valid JSON (at byte 20)"},
	{`{"messageIds":["A",]}`, "the body is not valid JSON (at byte 20)"},
	{`{"messageIds":[,"A"]}`, "the body is not valid JSON (at byte 16)"},
	{"{\"session\":\"de\tmo\"}", "the body is not valid JSON (at byte 15)"},
	{"{\"x\":\"\x00\",\"session\":\"demo\"}", "the body is not valid JSON (at byte 7)"},
	{`{"x":01,"session":"demo"}`, "the body is not valid JSON (at byte 7)"},
	{`{"x":1.,"session":"demo"}`, "the body is not valid JSON (at byte 8)"},
	{`{"x":-,"session":"demo"}`, "the body is not valid JSON (at byte 7)"},
	{`{"x":1e,"session":"demo"}`, "the body is not valid JSON (at byte 8)"},
	{`{"x":+1,"session":"demo"}`, "the body is not valid JSON (at byte 6)"},
	{`{"x":.5,"session":"demo"}`, "the body is not valid JSON (at byte 6)"},
	{`{"x":tru,"session":"demo"}`, "the body is not valid JSON (at byte 9)"},
	{`{"x":nil,"session":"demo"}`, "the body is not valid JSON (at byte 7)"},
	{`{"x":[1,2},"session":"demo"}`, "the body is not valid JSON (at byte 10)"},
	{`{"x":{"a" 1},"session":"demo"}`, "the body is not valid JSON (at byte 11)"},
	{`{"x":{"a":1,},"session":"demo"}`, "the body is not valid JSON (at byte 13)"},
	{`{"x":{1:2},"session":"demo"}`, "the body is not valid JSON (at byte 7)"},
	{`{"typing_indicator":{"type":"text" "x":1}}`, "the body is not valid JSON (at byte 36)"},
	{`{"async":true "session":"demo"}`, "the body is not valid JSON (at byte 15)"},
	{`{"session":"demo"`, "the body ends before its JSON object does"},
	{`{"x":[1,2`, "the body ends before its JSON object does"},
}

// A malformed body is refused by decodePlain (which reads each body once,
// checking its syntax as it goes) and answered with encoding/json's
// account of the fault, word for word.
func TestDecodePlainRefusesMalformedBodies(t *testing.T) {
	for _, tc := range malformedBodies {
		body := []byte(tc.body)
		if json.Valid(body) {
			t.Fatalf("%q is valid JSON", body)
		}
		var req seenRequest
		if req.decodePlain(body) {
			t.Errorf("decodePlain(%q) = %+v, accepting invalid JSON", body, req)
		}
		var je *jsonError
		if err := new(seenRequest).decode(body); !errors.As(err, &je) || je.msg != tc.msg || je.field != "" {
			t.Errorf("decode(%q): %#v, want the message %q", body, err, tc.msg)
		}
	}
}

// Values nested deeper than decodePlain follows are left to encoding/json,
// which decodes them as it did.
func TestDecodeDeeplyNested(t *testing.T) {
	deep := strings.Repeat("[", maxPlainDepth+1) + strings.Repeat("]", maxPlainDepth+1)
	body := []byte(`{"x":` + deep + `,"session":"demo","chatId":"15551234567@c.us","messageIds":["A"]}`)
	if new(seenRequest).decodePlain(body) {
		t.Errorf("decodePlain followed %d levels", maxPlainDepth+1)
	}
	req, err := decodeJSON(body)
	if err != nil || req.Session != "demo" || req.ChatID != "15551234567@c.us" || len(req.MessageIDs) != 1 {
		t.Fatalf("decodeJSON: %+v, %v", req, err)
	}
	shallow := []byte(`{"x":` + deep[1:len(deep)-1] + `,"session":"demo"}`)
	if !new(seenRequest).decodePlain(shallow) {
		t.Errorf("decodePlain refused %d levels", maxPlainDepth)
	}
}

// checkPlain fails t if decodePlain accepts body when json.Valid does
// not, or decodes it otherwise than json.Unmarshal and unmarshalExact do.
func checkPlain(t *testing.T, body []byte) {
	t.Helper()
	var plain seenRequest
	if !plain.decodePlain(body) {
		return
	}
	if !json.Valid(body) {
		// decode trusts decodePlain to refuse what is not JSON, for
		// encoding/json to describe.
		t.Fatalf("decodePlain(%q) = %+v, accepting invalid JSON", body, plain)
	}
	var std, exact seenRequest
	if err := json.Unmarshal(body, &std); err != nil || !reflect.DeepEqual(plain, std) {
		t.Fatalf("decodePlain(%q) = %+v; json.Unmarshal: %+v, %v", body, plain, std, err)
	}
	if err := unmarshalExact(body, &exact); err != nil || !reflect.DeepEqual(plain, exact) {
		t.Fatalf("decodePlain(%q) = %+v; unmarshalExact: %+v, %v", body, plain, exact, err)
	}
}

func TestDecodePlain(t *testing.T) {
	for _, s := range append(bodySeeds, plainSeeds...) {
		checkPlain(t, []byte(s))
	}
	// The bodies clients send take the plain path.
	for _, s := range append(bodySeeds[:14], plainSeeds[:3]...) {
		var req seenRequest
		if !req.decodePlain([]byte(s)) {
			t.Errorf("decodePlain(%q) refused a plain body", s)
		}
	}
	// And what needs encoding/json does not.
	for _, s := range []string{`{"session":"demo","session":null}`, `{"SESSION":"demo"}`, `{"\u0073ession":"demo"}`,
		`{"session":"dé"}`, `{"async":"true"}`, `{"typing_indicator":{"type":1}}`, `[]`, `{"session":"demo"}   x`} {
		var req seenRequest
		if req.decodePlain([]byte(s)) {
			t.Errorf("decodePlain(%q) = %+v, want it left to encoding/json", s, req)
		}
	}
}

// decodePlain makes a body's strings in one allocation while it has room to
// note where each goes, and each on its own beyond: either way it decodes
// what encoding/json does, for every string key and lists of ids on both
// sides of that room.
func TestDecodePlainKeptStrings(t *testing.T) {
	const head = `{"session":"demo","instance_id":"demo","access_token":"t0k","chatId":"15551234567@c.us","to":"15551234567",` +
		`"participant":"15557654321","type":"read","typing_indicator":{"type":"text"},"messageId":"M0"`
	for n := range 13 {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf(`"ID%d"`, i)
		}
		for _, body := range []string{
			head + `,"messageIds":[` + strings.Join(ids, ",") + `]}`,
			`{"messageIds":[` + strings.Join(ids, ",") + `],"session":"demo","chatId":"15551234567@c.us"}`,
		} {
			var req seenRequest
			if !req.decodePlain([]byte(body)) {
				t.Fatalf("decodePlain(%q) refused a plain body", body)
			}
			checkPlain(t, []byte(body))
		}
	}
	// The request BenchmarkEndToEnd sends, whose strings were one
	// allocation each.
	body := []byte(`{"session":"demo","to":"15551234567@c.us","messageId":"3EB0C767D26A1D98A4"}`)
	if n := testing.AllocsPerRun(100, func() {
		var req seenRequest
		if !req.decodePlain(body) {
			t.Fatal("decodePlain refused a plain body")
		}
	}); n != 1 {
		t.Errorf("decodePlain(%q): %v allocations, want 1 (its three strings together)", body, n)
	}
}

// FuzzDecodePlain: what decodePlain decodes, json.Unmarshal and
// unmarshalExact decode alike.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range append(bodySeeds, plainSeeds...) {
		f.Add([]byte(s))
	}
	for _, tc := range malformedBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPlain(t, body)
	})
}

// Each decoder keeps [] apart from null and from an absent list: an empty
// list is a 400, the others ask for the whole chat (buildPlan).
func TestDecodersKeepEmptyList(t *testing.T) {
	body := []byte(`{"messageIds":[]}`)
	var plain, std, exact seenRequest
	if !plain.decodePlain(body) {
		t.Fatal("decodePlain refused a plain body")
	}
	if err := json.Unmarshal(body, &std); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(body, &exact); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]seenRequest{"decodePlain": plain, "json.Unmarshal": std, "unmarshalExact": exact} {
		if r.MessageIDs == nil || len(r.MessageIDs) != 0 {
			t.Errorf("%s: messageIds %#v, want an empty, non-nil list", name, r.MessageIDs)
		}
	}
}

// BenchmarkDecode decodes BenchmarkEndToEnd's Wasend request (see
// BenchmarkHandler), the plain path nearly every request takes:
//
//	go test -run '^$' -bench Decode -benchmem ./seenhandler/
func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0C767D26A1D98A4"]}`)
	b.ReportAllocs()
	for b.Loop() {
		var req seenRequest
		if err := req.decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// readBody reads what bytes.Buffer.ReadFrom reads through an
// http.MaxBytesReader, and fails as it does, whatever the size of the body
// against the limit and however its reader hands it over.
func TestReadBody(t *testing.T) {
	readers := map[string]func(io.Reader) io.Reader{
		"whole":       func(r io.Reader) io.Reader { return r },
		"byte a time": iotest.OneByteReader,
		"EOF at once": iotest.DataErrReader,
		"halves":      iotest.HalfReader,
		"cut off": func(r io.Reader) io.Reader {
			return io.MultiReader(r, iotest.ErrReader(io.ErrUnexpectedEOF))
		},
	}
	for _, limit := range []int64{64, 1024, 3000} {
		for _, size := range []int64{0, 1, limit - 1, limit, limit + 1, limit + 600} {
			body := strings.Repeat("x", int(size))
			for name, reader := range readers {
				for _, start := range [][]byte{nil, make([]byte, 0, 1024)} {
					r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(reader(strings.NewReader(body))))
					got, err := readBody(httptest.NewRecorder(), r, limit, start)
					r = httptest.NewRequest(http.MethodPost, "/", io.NopCloser(reader(strings.NewReader(body))))
					var want bytes.Buffer
					_, wantErr := want.ReadFrom(http.MaxBytesReader(httptest.NewRecorder(), r.Body, limit))
					if !bytes.Equal(got, want.Bytes()) || fmt.Sprintf("%#v", err) != fmt.Sprintf("%#v", wantErr) {
						t.Errorf("limit %d, %d bytes %s: %d bytes, %#v; want %d bytes, %#v", limit, size, name, len(got), err, want.Len(), wantErr)
					}
				}
			}
		}
	}
}
