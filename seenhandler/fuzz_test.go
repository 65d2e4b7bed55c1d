package seenhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
	"github.com/bluetick/bluetick/validate"
)

// Fuzz targets for the request decoder and the whole handler. Run one with,
// e.g.
//
//	go test -run '^$' -fuzz '^FuzzHandler$' -fuzztime 60s ./seenhandler/
//
// Without -fuzz, go test runs the seeds below (and testdata/fuzz) as
// ordinary tests. This file is in package seenhandler to reach decodeJSON.

// bodySeeds are request bodies: real ones of each dialect, then edge cases.
var bodySeeds = []string{
	// Wasend.
	`{"session":"demo","to":"+1 (555) 123-4567","messageId":"3EB0C767D26A1D98A4"}`,
	`{"session":"demo","to":"15551234567@c.us","messageId":"message_123"}`,
	`{"session":"demo","to":"120363012345678901@g.us","messageId":"3EB0AA","participant":"15557654321@c.us"}`,
	// Wawp.
	`{"instance_id":"demo","access_token":"demo-token","chatId":"120363012345678901@g.us","messageIds":["3EB0AA","3EB0BB"],"participant":"15557654321@c.us"}`,
	`{"instance_id":"demo","access_token":"demo-token","chatId":"15551234567@c.us","messageIds":["3EB0AA"]}`,
	`{"instance_id":"demo","session":"demo","chatId":"15551234567@c.us","messageIds":["3EB0AA"],"type":"played"}`,
	// WAHA, serialized ids.
	`{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0C767D26A1D98A4"]}`,
	`{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0AA","true_15551234567@c.us_3EB0BB"]}`,
	`{"session":"demo","messageIds":["true_15551234567@c.us_3EB0BB"]}`,
	`{"session":"demo","messageIds":["false_120363012345678901@g.us_3EB0ABCD_15557654321@c.us","false_120363012345678901@g.us_3EB0EF_123456789012345@lid"]}`,
	`{"session":"demo","chatId":"120363012345678901@g.us","messageIds":["false_120363012345678901@g.us_3EB0ABCD"],"participant":"15557654321@c.us"}`,
	`{"session":"demo","chatId":"120363123456789012@newsletter","messageIds":["123"]}`,
	`{"session":"demo","chatId":"123456789012345@lid","messageIds":["3EB0"],"type":"read"}`,
	`{"session":"demo","chatId":"15551234567@c.us"}`,
	// Edge cases.
	``, ` `, `null`, `true`, `0`, `"demo"`, `[]`, `{}`, `[{}]`, `{} {}`, `{}x`, `{"session":`, `{"session":"demo"`,
	`{"session":1e999}`, `{"session":123456789012345678901234567890}`, `{"messageIds":[[["3EB0"]]]}`,
	`{"messageIds":"3EB0"}`, `{"messageId":["3EB0"]}`, `{"messageIds":[null,"3EB0"]}`, `{"messageIds":null}`,
	`{"session":"demo","to":"a@b@c","messageId":"x"}`, `{"session":"demo","to":"status@broadcast","messageId":"x"}`,
	`{"session":"demo","to":"123:12@s.whatsapp.net","messageId":"x"}`, `{"session":"demo","to":"+1 (234) 567-890","messageId":"x"}`,
	`{"session":"démo","chatId":"١٢٣٤٥٦٧٨","messageIds":["ünï","\u0000"]}`, `{"session":"\ud800","to":"\u00e9"}`,
	`{"SESSION":"demo","ChatID":"15551234567","MESSAGEID":"A"}`, `{"session":"demo","session":"other"}`,
	`{"session":"demo","SESSION":"sales"}`, `{"\u0073ession":"demo","ſession":"sales","meſſageId":"x"}`, `{"messageId":"","messageIds":[null,""]}`,
	`{"session":"demo","chatId":"15551234567@c.us","messageIds":["A","A","a"],"type":"PLAYED"}`,
	`{"session":"demo","chatId":"15551234567@c.us","to":"15557654321","messageIds":["A"]}`,
	`{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15557654321@c.us_A"]}`,
	`{"unknown":{"deep":[1,2,{"x":null}]},"session":"demo","to":"15551234567","messageId":"A"}`,
	`{"session":"demo","to":"15551234567","messageId":"A","async":true}`, "\xef\xbb\xbf{}", "{\"session\":\"\xff\"}", `{"session":"demo","to":"15551234567","messageId":"A"}` + "\n\t ",
	// A repeated key whose later value is null: json.Unmarshal keeps the
	// string, empties the list; the key-exact decoder must agree.
	`{"session":"a","session":null,"chatId":"15551234567@c.us","messageIds":["X"],"messageIds":null}`,
	`{"Session":"a","session":"b","session":null,"chatId":"15551234567@c.us","messageIds":["X"]}`,
}

// FuzzDecode: decodeJSON never panics; it fails with a *jsonError, or
// succeeds on valid JSON, and what it decodes survives a round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range append(bodySeeds, plainSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeJSON(body)
		if err != nil {
			var je *jsonError
			if !errors.As(err, &je) || je.msg == "" {
				t.Fatalf("decodeJSON(%q): error %#v is not a *jsonError with a message", body, err)
			}
			if req != nil {
				t.Fatalf("decodeJSON(%q): error %v with a request %+v", body, err, req)
			}
			return
		}
		if req == nil {
			t.Fatalf("decodeJSON(%q): nil request and nil error", body)
		}
		if !json.Valid(body) {
			t.Fatalf("decodeJSON(%q) succeeded on invalid JSON: %+v", body, req)
		}
		// The fast path (json.Unmarshal) is taken only where it decodes
		// what the key-exact one does.
		var exact seenRequest
		if err := unmarshalExact(body, &exact); err != nil || !reflect.DeepEqual(&exact, req) {
			t.Fatalf("decodeJSON(%q) = %+v, the key-exact decoder %+v, %v", body, req, exact, err)
		}
		// Re-encoding is sane: valid JSON that decodes to the same request.
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("decodeJSON(%q) = %+v, which does not marshal: %v", body, req, err)
		}
		again, err := decodeJSON(enc)
		if err != nil {
			t.Fatalf("decodeJSON(%q) = %+v, marshalled as %s, which does not decode: %v", body, req, enc, err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("decodeJSON(%q) = %+v, marshalled as %s, decodes as %+v", body, req, enc, again)
		}
	})
}

// fuzzPaths are the paths FuzzHandler posts to (by its path argument).
var fuzzPaths = []string{PathWAHA, PathWasend, PathWawp, "/elsewhere"}

var (
	plainIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// codeStatus is the status of each error code.
	codeStatus = map[Code]int{
		CodeInvalidJSON: 400, CodeValidationFailed: 400, CodeInvalidReceipt: 400, CodeUnauthorized: 401,
		CodeForbidden: 403, CodeSessionNotFound: 404, CodeMessageNotFound: 404, CodeMethodNotAllowed: 405,
		CodeBodyTooLarge: 413, CodeUnsupportedMediaType: 415,
	}
)

// FuzzHandler posts arbitrary bodies, with arbitrary Content-Type and
// Authorization headers, through a Handler over a healthy fake: it never
// panics nor answers 5xx, every answer is a JSON object with "success", a
// 2xx says what the fake really recorded (or that every id was skipped), and
// every other answer carries an error code.
func FuzzHandler(f *testing.F) {
	for i, s := range bodySeeds {
		f.Add([]byte(s), "application/json", "Bearer demo-token", uint8(i))
	}
	ok := bodySeeds[0]
	for _, ct := range []string{
		"", "application/json; charset=utf-8", "application/json; charset=UTF8", "application/json; charset=latin1",
		"Application/JSON", "application/vnd.api+json", "application/+json", "text/plain", "application/json;;",
		"application/json; charset=", "multipart/form-data; boundary=x", "application/json\x00", "é/é",
	} {
		f.Add([]byte(ok), ct, "", uint8(len(ct)))
	}
	f.Add([]byte(ok), "application/json", "Bearer", uint8(1))
	f.Add([]byte(ok), "application/json", "Basic \xff\xfe", uint8(2))

	// Each input gets a fresh fake behind "demo", so that what the fake
	// records is this input's alone (a receipt queued by an earlier
	// "async": true request goes to that request's fake).
	reg := session.NewMemoryRegistry()
	h, err := New(reg, WithNoAuth())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType, authorization string, path uint8) {
		fake := sessiontest.New()
		reg.Set("demo", fake.Session("demo"))
		r := httptest.NewRequest(http.MethodPost, fuzzPaths[int(path)%len(fuzzPaths)], bytes.NewReader(body))
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType}
		}
		if authorization != "" {
			r.Header["Authorization"] = []string{authorization}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		in := func() string { return fmt.Sprintf("body %q, Content-Type %q", short(body), contentType) }
		if w.Code >= 500 {
			t.Fatalf("%s: status %d, body %s", in(), w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("%s: Content-Type %q", in(), ct)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &top); err != nil {
			t.Fatalf("%s: status %d, answer %s is not a JSON object: %v", in(), w.Code, w.Body, err)
		}
		var success bool
		if err := json.Unmarshal(top["success"], &success); top["success"] == nil || err != nil {
			t.Fatalf("%s: answer %s has no boolean success", in(), w.Body)
		}
		calls := fake.Calls()
		for _, c := range calls {
			if c.Err != nil {
				t.Fatalf("%s: the healthy fake refused receipt %+v: %v", in(), c.Receipt, c.Err)
			}
		}
		if w.Code < 200 || w.Code > 299 {
			checkFuzzError(t, in(), w, success, len(calls))
			return
		}
		// WAHA's path answers every success 201, as WAHA does; the others
		// never do.
		if waha := r.URL.Path == PathWAHA; waha != (w.Code == http.StatusCreated) {
			t.Fatalf("%s: status %d on %s: %s", in(), w.Code, r.URL.Path, w.Body)
		}
		checkFuzzOK(t, in(), body, w, top, success, fake)
	})
}

func checkFuzzError(t *testing.T, in string, w *httptest.ResponseRecorder, success bool, calls int) {
	t.Helper()
	var e errorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s: status %d, answer %s: %v", in, w.Code, w.Body, err)
	}
	if success || e.Error.Code == "" || e.Error.Message == "" || e.Error.Fields == nil {
		t.Fatalf("%s: status %d, answer %s: want success false, an error code, a message and fields", in, w.Code, w.Body)
	}
	if want, ok := codeStatus[e.Error.Code]; !ok || want != w.Code {
		t.Fatalf("%s: status %d with code %q", in, w.Code, e.Error.Code)
	}
	if calls > 0 || len(e.Receipts) > 0 {
		t.Fatalf("%s: status %d, yet %d receipts were sent: %s", in, w.Code, calls, w.Body)
	}
}

func checkFuzzOK(t *testing.T, in string, body []byte, w *httptest.ResponseRecorder, top map[string]json.RawMessage,
	success bool, fake *sessiontest.Fake) {
	t.Helper()
	var resp response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%s: status %d, answer %s: %v", in, w.Code, w.Body, err)
	}
	if !success || resp.Session != "demo" || resp.Receipts == nil || resp.Skipped == nil {
		t.Fatalf("%s: status %d, answer %s: want success, session demo, receipts and skipped", in, w.Code, w.Body)
	}
	chat, err := validate.NormalizeChat(resp.ChatID)
	if err != nil || chat.String() != resp.ChatID {
		t.Fatalf("%s: status %d, chatId %q is not normal (%v)", in, w.Code, resp.ChatID, err)
	}
	got := fake.Receipts()
	if w.Code == http.StatusAccepted || w.Code == http.StatusCreated && resp.Accepted {
		checkFuzzQueued(t, in, w, top, resp, len(got))
		return
	}
	if w.Code != http.StatusOK && w.Code != http.StatusCreated {
		t.Fatalf("%s: status %d: %s", in, w.Code, w.Body)
	}
	// What the answer says was sent is what the fake recorded.
	if len(got) != len(resp.Receipts) || resp.Acknowledged != (len(got) > 0) {
		t.Fatalf("%s: status %d, acknowledged %v with %d receipts in the answer, but the fake recorded %d: %s",
			in, w.Code, resp.Acknowledged, len(resp.Receipts), len(got), w.Body)
	}
	for i, rc := range resp.Receipts {
		// A request's receipts (one per sender) go out at once, in any order.
		j := slices.IndexFunc(got, func(g session.Receipt) bool { return g.Sender == rc.Sender })
		if j < 0 {
			t.Fatalf("%s: the answer's receipt %d is %+v, the fake recorded none for its sender: %+v", in, i, rc, got)
		}
		g := got[j]
		if rc.ChatID != g.Chat || rc.Sender != g.Sender || rc.Type != string(g.Type) || !slices.Equal(rc.MessageIDs, g.MessageIDs) {
			t.Fatalf("%s: the answer's receipt %d is %+v, the fake recorded %+v", in, i, rc, g)
		}
		if rc.ChatID != resp.ChatID || len(rc.MessageIDs) == 0 || (rc.Sender != "") != chat.IsGroup() {
			t.Fatalf("%s: receipt %d is %+v, in an answer for chat %s", in, i, rc, resp.ChatID)
		}
		if rc.Sender != "" {
			if p, err := validate.NormalizeParticipant(rc.Sender); err != nil || p.String() != rc.Sender {
				t.Fatalf("%s: receipt %d's sender %q is not normal (%v)", in, i, rc.Sender, err)
			}
		}
		for _, id := range rc.MessageIDs {
			if !plainIDRe.MatchString(id) {
				t.Fatalf("%s: receipt %d has the message id %q", in, i, id)
			}
		}
	}
	if resp.Acknowledged {
		return
	}
	// Nothing sent: every id was skipped, or the request named a chat and
	// no ids, and the fake knows no unread message.
	req, err := decodeJSON(body)
	if err != nil {
		t.Fatalf("%s: status %d for a body decodeJSON refuses: %v", in, w.Code, err)
	}
	noIDs := !req.MessageID.ok && len(req.MessageIDs) == 0
	if len(resp.Skipped) == 0 && !noIDs {
		t.Fatalf("%s: status %d with nothing sent and nothing skipped: %s", in, w.Code, w.Body)
	}
}

// checkFuzzQueued checks a 202: the request asked for "async": true, so
// its receipts are queued, to be sent later; none was sent yet (the
// handler waits at least a few hundred milliseconds before sending).
func checkFuzzQueued(t *testing.T, in string, w *httptest.ResponseRecorder, top map[string]json.RawMessage, resp response, recorded int) {
	t.Helper()
	var accepted bool
	if err := json.Unmarshal(top["accepted"], &accepted); err != nil || !accepted || resp.Acknowledged ||
		len(resp.Receipts) == 0 || recorded > len(resp.Receipts) {
		t.Fatalf("%s: queued, the fake recorded %d receipts, answer %s: want accepted, not acknowledged, receipts",
			in, recorded, w.Body)
	}
	for i, rc := range resp.Receipts {
		if rc.ChatID != resp.ChatID || len(rc.MessageIDs) == 0 || (rc.Type != "read" && rc.Type != "played") {
			t.Fatalf("%s: queued receipt %d is %+v", in, i, rc)
		}
		for _, id := range rc.MessageIDs {
			if !plainIDRe.MatchString(id) {
				t.Fatalf("%s: queued receipt %d has the message id %q", in, i, id)
			}
		}
	}
}

// short shortens b for a failure message.
func short(b []byte) []byte {
	const max = 300
	if len(b) > max {
		return append(b[:max:max], "…"...)
	}
	return b
}

// decodeJSON decodes body into a new seenRequest; see seenRequest.decode.
func decodeJSON(body []byte) (*seenRequest, error) {
	req := new(seenRequest)
	if err := req.decode(body); err != nil {
		return nil, err
	}
	return req, nil
}
