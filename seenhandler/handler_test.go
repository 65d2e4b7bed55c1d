package seenhandler_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

const (
	token     = "t0ken"
	demoToken = "demo-only"
	user      = "15551234567@s.whatsapp.net"
	sender    = "15557654321@s.whatsapp.net"
	sender2   = "15550001111@s.whatsapp.net"
	group     = "120363012345678901@g.us"
)

// fixedNow is the time inside a testing/synctest bubble until it sleeps:
// the receipts of a request in one are stamped with it.
var fixedNow = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).In(time.Local)

func newHandler(t *testing.T, opts ...seenhandler.Option) (*seenhandler.Handler, *sessiontest.Fake) {
	t.Helper()
	fake := sessiontest.New()
	auth, err := seenhandler.NewStaticAuth(map[string][]string{
		token:     {seenhandler.AllSessions},
		demoToken: {"demo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]seenhandler.Option{seenhandler.WithAuth(auth)}, opts...)
	h, err := seenhandler.New(fake.Registry("demo", "other"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	return h, fake
}

// request is one HTTP request of a table test. Headers default to a JSON
// content type and the all-sessions token as Bearer; a header set to ""
// is removed.
type request struct {
	method, path string
	header       map[string]string
	body         string
}

func (rq request) do(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	method, path := rq.method, rq.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = seenhandler.PathWAHA
	}
	r := httptest.NewRequest(method, path, strings.NewReader(rq.body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	for k, v := range rq.header {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	checkContract(t, r, rq.body, w)
	return w
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	var v T
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
	return v
}

// bySender sorts receipts by sender, for comparisons that ignore the order
// in which a request's receipts went out.
func bySender(rs []session.Receipt) []session.Receipt {
	return slices.SortedStableFunc(slices.Values(rs), func(a, b session.Receipt) int { return cmp.Compare(a.Sender, b.Sender) })
}

// seenOK is the status of a seen request sent (not queued) on path: 201
// on WAHA's path (the tests' default), as WAHA answers it, 200 elsewhere.
func seenOK(path string) int {
	if path == "" || path == seenhandler.PathWAHA {
		return http.StatusCreated
	}
	return http.StatusOK
}

func receipt(chat, from string, typ session.ReceiptType, ids ...string) session.Receipt {
	return session.Receipt{Chat: chat, Sender: from, MessageIDs: ids, Type: typ, Timestamp: fixedNow}
}

func TestDialects(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*sessiontest.Fake)
		req   request
		want  seenhandler.Response
		sent  []session.Receipt
	}{
		{
			name: "wasend",
			req: request{path: seenhandler.PathWasend,
				body: `{"session":"demo","to":"+1 (555) 123-4567","messageId":"3EB0C767D26A1D98A4"}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"3EB0C767D26A1D98A4"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "3EB0C767D26A1D98A4")},
		},
		{
			name: "wasend group JID",
			req: request{path: seenhandler.PathWasend,
				body: `{"session":"demo","to":"` + group + `","messageId":"ABC","participant":"15557654321@c.us"}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
				Receipts: []seenhandler.SentReceipt{{ChatID: group, Sender: sender, MessageIDs: []string{"ABC"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(group, sender, session.ReceiptRead, "ABC")},
		},
		{
			name: "wawp batch with token in body",
			req: request{path: seenhandler.PathWawp, header: map[string]string{"Authorization": ""},
				body: `{"instance_id":"demo","access_token":"` + token + `","chatId":"15551234567@c.us","messageIds":["A1","B2","C3"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"A1", "B2", "C3"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "A1", "B2", "C3")},
		},
		{
			name: "wawp group with participant",
			req: request{path: seenhandler.PathWawp, header: map[string]string{"Authorization": ""},
				body: `{"instance_id":"demo","access_token":"` + token + `","chatId":"` + group + `","messageIds":["A1","B2"],"participant":"+1 555 765 4321"}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
				Receipts: []seenhandler.SentReceipt{{ChatID: group, Sender: sender, MessageIDs: []string{"A1", "B2"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(group, sender, session.ReceiptRead, "A1", "B2")},
		},
		{
			name: "waha serialized ids with X-Api-Key, own message skipped",
			req: request{header: map[string]string{"Authorization": "", "X-Api-Key": token},
				body: `{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0AA","true_15551234567@c.us_3EB0BB"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"3EB0AA"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{{MessageID: "true_15551234567@c.us_3EB0BB", Reason: seenhandler.SkipFromMe}}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "3EB0AA")},
		},
		{
			name: "waha group: one receipt per sender, participants from serialized ids",
			req: request{header: map[string]string{"Authorization": "", "X-Api-Key": token},
				body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_M1_15557654321@c.us","false_` + group + `_M2_15550001111@c.us","false_` + group + `_M3_15557654321@c.us"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
				Receipts: []seenhandler.SentReceipt{
					{ChatID: group, Sender: sender, MessageIDs: []string{"M1", "M3"}, Type: "read"},
					{ChatID: group, Sender: sender2, MessageIDs: []string{"M2"}, Type: "read"},
				},
				Skipped: []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(group, sender, session.ReceiptRead, "M1", "M3"), receipt(group, sender2, session.ReceiptRead, "M2")},
		},
		{
			name: "waha chat taken from serialized ids",
			req:  request{body: `{"session":"demo","messageIds":["false_15551234567@c.us_X1"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"X1"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "X1")},
		},
		{
			name: "played, ids deduplicated across messageId and messageIds, unknown fields ignored",
			req: request{body: `{"session":"demo","chatId":"123456789012345@lid","messageId":"V1","messageIds":["V1","V2","false_123456789012345@lid_V2"],"type":"played","extra":{"x":1}}`,
				header: map[string]string{"Content-Type": "application/json; charset=UTF-8"}},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: "123456789012345@lid",
				Receipts: []seenhandler.SentReceipt{{ChatID: "123456789012345@lid", MessageIDs: []string{"V1", "V2"}, Type: "played"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt("123456789012345@lid", "", session.ReceiptPlayed, "V1", "V2")},
		},
		{
			name:  "read-self reported as sent",
			setup: func(f *sessiontest.Fake) { f.SetReadReceiptsOff(true) },
			req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`,
				header: map[string]string{"Content-Type": "application/vnd.api+json"}},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"A1"}, Type: "read-self"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptReadSelf, "A1")},
		},
		{
			name: "resolver fills the group sender and skips own messages",
			setup: func(f *sessiontest.Fake) {
				f.AddMessage("demo", session.Message{Chat: group, ID: "G1", Sender: "15557654321:3@s.whatsapp.net"})
				f.AddMessage("demo", session.Message{Chat: group, ID: "G2", FromMe: true})
			},
			req: request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["G1","G2"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
				Receipts: []seenhandler.SentReceipt{{ChatID: group, Sender: sender, MessageIDs: []string{"G1"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{{MessageID: "G2", Reason: seenhandler.SkipFromMe}}},
			sent: []session.Receipt{receipt(group, sender, session.ReceiptRead, "G1")},
		},
		{
			name: "resolver: messages the account has read are skipped",
			setup: func(f *sessiontest.Fake) {
				f.AddMessage("demo", session.Message{Chat: user, ID: "R1", Sender: user, Read: true})
				f.AddMessage("demo", session.Message{Chat: user, ID: "U1", Sender: user})
			},
			req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["R1","U1"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"U1"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{{MessageID: "R1", Reason: seenhandler.SkipAlreadyRead}}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "U1")},
		},
		{
			name: "resolver: a voice note read is still played",
			setup: func(f *sessiontest.Fake) {
				f.AddMessage("demo", session.Message{Chat: user, ID: "V1", Sender: user, Read: true})
			},
			req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["V1"],"type":"played"}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"V1"}, Type: "played"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptPlayed, "V1")},
		},
		{
			// The handler asks for the request's participant; the backend,
			// as the real one, names the sender it saw the message from (a
			// receipt naming anyone else reaches nobody), and the answer
			// says both.
			name: "request participant wins over the resolver, the backend's sender over both",
			setup: func(f *sessiontest.Fake) {
				f.AddMessage("demo", session.Message{Chat: group, ID: "G1", Sender: sender2})
			},
			req: request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["G1"],"participant":"` + sender + `"}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
				Receipts: []seenhandler.SentReceipt{{ChatID: group, Sender: sender2, RequestedSender: sender, MessageIDs: []string{"G1"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(group, sender, session.ReceiptRead, "G1")},
		},
		{
			name: "everything skipped: 200, not acknowledged, nothing sent",
			req:  request{body: `{"session":"demo","messageIds":["true_15551234567@c.us_OWN"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: false, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{},
				Skipped:  []seenhandler.Skipped{{MessageID: "true_15551234567@c.us_OWN", Reason: seenhandler.SkipFromMe}}},
		},
		{
			name: "channel read reported as view",
			req:  request{body: `{"session":"demo","chatId":"120363123456789012@newsletter","messageIds":["101"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: "120363123456789012@newsletter",
				Receipts: []seenhandler.SentReceipt{{ChatID: "120363123456789012@newsletter", MessageIDs: []string{"101"}, Type: "view"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt("120363123456789012@newsletter", "", session.ReceiptView, "101")},
		},
		{
			name: "session-limited token on its session",
			req: request{header: map[string]string{"Authorization": "Bearer " + demoToken},
				body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`},
			want: seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: user,
				Receipts: []seenhandler.SentReceipt{{ChatID: user, MessageIDs: []string{"A1"}, Type: "read"}},
				Skipped:  []seenhandler.Skipped{}},
			sent: []session.Receipt{receipt(user, "", session.ReceiptRead, "A1")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { // the receipts are stamped fixedNow
				h, fake := newHandler(t)
				if tc.setup != nil {
					tc.setup(fake)
				}
				w := tc.req.do(t, h)
				if w.Code != seenOK(tc.req.path) {
					t.Fatalf("status %d, body %s", w.Code, w.Body)
				}
				got := decode[seenhandler.Response](t, w)
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("response\n got %+v\nwant %+v", got, tc.want)
				}
				// A request's receipts (one per sender) go out at once: in any order.
				if sent := bySender(fake.Receipts()); !reflect.DeepEqual(sent, bySender(tc.sent)) {
					t.Errorf("sent\n got %+v\nwant %+v", sent, tc.sent)
				}
			})
		})
	}
}

func TestErrors(t *testing.T) {
	const secret = "s3cr3t backend detail"
	valid := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	tests := []struct {
		name   string
		opts   []seenhandler.Option
		setup  func(*sessiontest.Fake)
		req    request
		status int
		code   seenhandler.Code
		fields []string // "field rule"
		header map[string]string
	}{
		{name: "GET", req: request{method: http.MethodGet}, status: 405, code: "method_not_allowed", header: map[string]string{"Allow": "POST"}},
		{name: "PUT", req: request{method: http.MethodPut, body: valid}, status: 405, code: "method_not_allowed", header: map[string]string{"Allow": "POST"}},
		{name: "no content type", req: request{body: valid, header: map[string]string{"Content-Type": ""}}, status: 415, code: "unsupported_media_type"},
		{name: "form content type", req: request{body: valid, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 415, code: "unsupported_media_type"},
		{name: "text/plain", req: request{body: valid, header: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: "unsupported_media_type"},
		{name: "content type not echoed", req: request{body: valid, header: map[string]string{"Content-Type": "text/html; x=s3cr3t"}}, status: 415, code: "unsupported_media_type"},
		{name: "charset not echoed", req: request{body: valid, header: map[string]string{"Content-Type": "application/json; charset=s3cr3t"}}, status: 415, code: "unsupported_media_type"},
		{name: "unparsable content type not echoed", req: request{body: valid, header: map[string]string{"Content-Type": "application/json; s3cr3t"}}, status: 415, code: "unsupported_media_type"},
		{name: "latin1 charset", req: request{body: valid, header: map[string]string{"Content-Type": "application/json; charset=latin1"}}, status: 415, code: "unsupported_media_type"},
		{name: "body too large", opts: []seenhandler.Option{seenhandler.WithRequestLimits(64, 0)},
			req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["` + strings.Repeat("A", 100) + `"]}`}, status: 413, code: "body_too_large"},
		{name: "body over the default 64 KiB", req: request{body: `{"session":"demo","x":"` + strings.Repeat("A", 64<<10) + `"}`}, status: 413, code: "body_too_large"},
		{name: "empty body", req: request{body: ``}, status: 400, code: "invalid_json"},
		{name: "syntax error", req: request{body: `{"session":`}, status: 400, code: "invalid_json"},
		{name: "not JSON", req: request{body: `session=demo`}, status: 400, code: "invalid_json"},
		{name: "array body", req: request{body: `[1,2]`}, status: 400, code: "invalid_json"},
		{name: "null body", req: request{body: ` null `}, status: 400, code: "invalid_json"},
		{name: "trailing data", req: request{body: valid + `{}`}, status: 400, code: "invalid_json"},
		{name: "messageIds not an array", req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":"A1"}`}, status: 400, code: "invalid_json", fields: []string{"messageIds type"}},
		{name: "messageId a number", req: request{body: `{"session":"demo","to":"15551234567","messageId":12}`}, status: 400, code: "invalid_json", fields: []string{"messageId type"}},
		{name: "no token", req: request{body: valid, header: map[string]string{"Authorization": ""}}, status: 401, code: "unauthorized", header: map[string]string{"WWW-Authenticate": `Bearer realm="bluetick"`}},
		{name: "wrong token", req: request{body: valid, header: map[string]string{"Authorization": "Bearer nope"}}, status: 401, code: "unauthorized", header: map[string]string{"WWW-Authenticate": `Bearer realm="bluetick"`}},
		{name: "basic auth is no token", req: request{body: valid, header: map[string]string{"Authorization": "Basic dDBrZW4="}}, status: 401, code: "unauthorized"},
		{name: "wrong X-Api-Key", req: request{body: valid, header: map[string]string{"Authorization": "", "X-Api-Key": "nope"}}, status: 401, code: "unauthorized"},
		{name: "wrong access_token", req: request{path: seenhandler.PathWawp, header: map[string]string{"Authorization": ""},
			body: `{"instance_id":"demo","access_token":"nope","chatId":"15551234567","messageIds":["A"]}`}, status: 401, code: "unauthorized"},
		{name: "no token, no session: 401 first", req: request{body: `{}`, header: map[string]string{"Authorization": ""}}, status: 401, code: "unauthorized"},
		{name: "token not for this session", req: request{body: `{"session":"other","chatId":"15551234567","messageIds":["A1"]}`,
			header: map[string]string{"Authorization": "Bearer " + demoToken}}, status: 403, code: "forbidden"},
		{name: "missing session (wasend)", req: request{path: seenhandler.PathWasend, body: `{"chatId":"15551234567","messageIds":["A1"]}`}, status: 400, code: "validation_failed", fields: []string{"session required"}},
		{name: "missing session (waha): the session \"default\", none here", req: request{body: `{"chatId":"15551234567","messageIds":["A1"]}`}, status: 404, code: "session_not_found"},
		{name: "missing instance_id (wawp)", req: request{path: seenhandler.PathWawp, body: `{"access_token":"` + token + `","chatId":"15551234567","messageIds":["A1"]}`},
			status: 400, code: "validation_failed", fields: []string{"instance_id required"}},
		{name: "session and instance_id differ", req: request{body: `{"session":"demo","instance_id":"other","chatId":"15551234567","messageIds":["A1"]}`},
			status: 400, code: "validation_failed", fields: []string{"instance_id conflict"}},
		{name: "missing chat (waha)", req: request{body: `{"session":"demo","messageIds":["A1"]}`}, status: 400, code: "validation_failed", fields: []string{"chatId required"}},
		{name: "missing to (wasend)", req: request{path: seenhandler.PathWasend, body: `{"session":"demo","messageId":"A1"}`}, status: 400, code: "validation_failed", fields: []string{"to required"}},
		{name: "everything missing", req: request{path: seenhandler.PathWasend, body: `{}`}, status: 400, code: "validation_failed", fields: []string{"session required", "to required", "messageId required"}},
		{name: "everything missing (waha: the session is \"default\")", req: request{body: `{}`}, status: 400, code: "validation_failed", fields: []string{"chatId required", "messageIds required"}},
		{name: "bad phone", req: request{body: `{"session":"demo","chatId":"0123","messageIds":["A1"]}`}, status: 400, code: "validation_failed", fields: []string{"chatId wa_chat"}},
		{name: "broadcast list", req: request{body: `{"session":"demo","chatId":"12345@broadcast","messageIds":["A1"]}`}, status: 400, code: "validation_failed", fields: []string{"chatId wa_chat"}},
		{name: "status without its author", req: request{body: `{"session":"demo","chatId":"status@broadcast","messageIds":["A1"]}`}, status: 400, code: "validation_failed", fields: []string{"participant required"}},
		{name: "bad to", req: request{path: seenhandler.PathWasend, body: `{"session":"demo","to":"a@b@c","messageId":"A1"}`}, status: 400, code: "validation_failed", fields: []string{"to wa_chat"}},
		{name: "chatId and to differ", req: request{body: `{"session":"demo","chatId":"15551234567","to":"15557654321","messageIds":["A1"]}`},
			status: 400, code: "validation_failed", fields: []string{"to conflict"}},
		{name: "bad message id", req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1","no spaces"]}`},
			status: 400, code: "validation_failed", fields: []string{"messageIds[1] wa_msgid"}},
		{name: "serialized id of another chat", req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["false_15557654321@c.us_A1"]}`},
			status: 400, code: "validation_failed", fields: []string{"messageIds[0] same_chat"}},
		{name: "serialized ids of two chats", req: request{body: `{"session":"demo","messageIds":["false_15551234567@c.us_A1","false_15557654321@c.us_A2"]}`},
			status: 400, code: "validation_failed", fields: []string{"messageIds[1] same_chat"}},
		{name: "bad participant", req: request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["A1"],"participant":"` + group + `"}`},
			status: 400, code: "validation_failed", fields: []string{"participant wa_participant"}},
		{name: "bad type", req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"],"type":"delivered"}`},
			status: 400, code: "validation_failed", fields: []string{"type oneof"}},
		{name: "too many ids", opts: []seenhandler.Option{seenhandler.WithRequestLimits(0, 2)},
			req: request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1","A2","A3"]}`}, status: 400, code: "validation_failed", fields: []string{"messageIds max"}},
		{name: "group without participant", req: request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["A1"]}`},
			status: 400, code: "validation_failed", fields: []string{"participant required"}},
		{name: "unknown session", req: request{body: `{"session":"nobody","chatId":"15551234567","messageIds":["A1"]}`}, status: 404, code: "session_not_found"},
		{name: "not connected", setup: func(f *sessiontest.Fake) {
			f.Inject(sessiontest.Fault{Err: fmt.Errorf("%w: %s", session.ErrNotConnected, secret)})
		},
			req: request{body: valid}, status: 503, code: "session_not_connected", header: map[string]string{"Retry-After": "5"}},
		{name: "not connected, custom Retry-After", opts: []seenhandler.Option{seenhandler.WithRetryAfter(1500 * time.Millisecond)},
			setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Err: session.ErrNotConnected}) },
			req:   request{body: valid}, status: 503, code: "session_not_connected", header: map[string]string{"Retry-After": "2"}},
		{name: "not logged in", setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Err: session.ErrNotLoggedIn}) },
			req: request{body: valid}, status: 503, code: "session_not_logged_in"},
		{name: "not logged in, the backend's Retry-After", setup: func(f *sessiontest.Fake) {
			f.Inject(sessiontest.Fault{Err: session.RetryLater(session.ErrNotLoggedIn, 7*time.Second)})
		},
			req: request{body: valid}, status: 503, code: "session_not_logged_in", header: map[string]string{"Retry-After": "7"}},
		{name: "not connected, the backend's Retry-After wins", opts: []seenhandler.Option{seenhandler.WithRetryAfter(time.Second)},
			setup: func(f *sessiontest.Fake) {
				f.Inject(sessiontest.Fault{Err: session.RetryLater(session.ErrNotConnected, 2500*time.Millisecond)})
			},
			req: request{body: valid}, status: 503, code: "session_not_connected", header: map[string]string{"Retry-After": "3"}},
		{name: "message not found", setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Err: session.ErrMessageNotFound}) },
			req: request{body: valid}, status: 404, code: "message_not_found"},
		{name: "backend rejects receipt", setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Err: session.ErrInvalidReceipt}) },
			req: request{body: valid}, status: 400, code: "invalid_receipt"},
		{name: "backend timeout", opts: []seenhandler.Option{seenhandler.WithTimeout(20 * time.Millisecond)},
			setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Latency: 5 * time.Second}) },
			req:   request{body: valid}, status: 504, code: "timeout"},
		{name: "backend error text stays in the log", setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Err: errors.New(secret)}) },
			req: request{body: valid}, status: 500, code: "internal"},
		{name: "backend panic", setup: func(f *sessiontest.Fake) { f.Inject(sessiontest.Fault{Panic: secret}) },
			req: request{body: valid}, status: 500, code: "internal"},
		{name: "fault on another session does not apply, on this chat does",
			setup: func(f *sessiontest.Fake) {
				f.Inject(sessiontest.Fault{Session: "other", Err: session.ErrNotLoggedIn})
				f.Inject(sessiontest.Fault{Session: "demo", Chat: user, Err: session.ErrNotConnected})
			},
			req: request{body: valid}, status: 503, code: "session_not_connected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fake := newHandler(t, tc.opts...)
			if tc.setup != nil {
				tc.setup(fake)
			}
			w := tc.req.do(t, h)
			if w.Code != tc.status {
				t.Errorf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			for k, v := range tc.header {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if strings.Contains(w.Body.String(), "s3cr3t") {
				t.Errorf("body leaks the backend's error text: %s", w.Body)
			}
			got := decode[seenhandler.ErrorResponse](t, w)
			if got.Success || got.Error.Code != tc.code || got.Error.Message == "" || got.Error.Fields == nil {
				t.Errorf("error body = %+v, want code %q", got, tc.code)
			}
			if got.Message != got.Error.Message {
				t.Errorf("top-level message %q, want error.message %q", got.Message, got.Error.Message)
			}
			var fields []string
			for _, f := range got.Error.Fields {
				fields = append(fields, f.Field+" "+f.Rule)
				if f.Message == "" {
					t.Errorf("field %s has no message", f.Field)
				}
			}
			if tc.fields != nil && !reflect.DeepEqual(fields, tc.fields) {
				t.Errorf("fields = %q, want %q", fields, tc.fields)
			}
			if sent := fake.Receipts(); len(sent) != 0 {
				t.Errorf("sent %+v on an error", sent)
			}
		})
	}
}

func TestPartialFailureReportsWhatWasSent(t *testing.T) {
	h, fake := newHandler(t)
	fake.Inject(sessiontest.Fault{Sender: sender2, Err: session.ErrNotConnected})
	w := request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_M1_15557654321@c.us","false_` + group + `_M2_15550001111@c.us"]}`}.do(t, h)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	got := decode[seenhandler.ErrorResponse](t, w)
	want := []seenhandler.SentReceipt{{ChatID: group, Sender: sender, MessageIDs: []string{"M1"}, Type: "read"}}
	if !reflect.DeepEqual(got.Receipts, want) {
		t.Errorf("receipts = %+v, want %+v", got.Receipts, want)
	}
	if sent := fake.Receipts(); len(sent) != 1 || sent[0].Sender != sender {
		t.Errorf("fake sent %+v", sent)
	}
}

func TestServesAfterPanic(t *testing.T) {
	h, fake := newHandler(t)
	fake.Inject(sessiontest.Fault{Call: 1, Panic: "boom"})
	body := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	if w := (request{body: body}).do(t, h); w.Code != http.StatusInternalServerError {
		t.Fatalf("first request: status %d", w.Code)
	}
	if w := (request{body: body}).do(t, h); w.Code != http.StatusCreated {
		t.Fatalf("second request: status %d, body %s", w.Code, w.Body)
	}
	calls := fake.Calls()
	if len(calls) != 2 || calls[0].Err == nil || calls[1].Err != nil {
		t.Errorf("calls = %+v", calls)
	}
}

func TestPanickingAuthenticatorAndRegistry(t *testing.T) {
	body := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	auth := seenhandler.WithAuth(seenhandler.AuthenticatorFunc(func(context.Context, seenhandler.Credentials) (context.Context, error) { panic("auth") }))
	h, err := seenhandler.New(session.NewMemoryRegistry(), auth)
	if err != nil {
		t.Fatal(err)
	}
	if w := (request{body: body}).do(t, h); w.Code != http.StatusInternalServerError {
		t.Errorf("panicking authenticator: status %d", w.Code)
	}
	reg := session.RegistryFunc(func(context.Context, string) (session.Session, error) { panic("registry") })
	h, err = seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	if w := (request{body: body}).do(t, h); w.Code != http.StatusInternalServerError {
		t.Errorf("panicking registry: status %d", w.Code)
	}
	nilReg := session.RegistryFunc(func(context.Context, string) (session.Session, error) { return nil, nil })
	h, err = seenhandler.New(nilReg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	if w := (request{body: body}).do(t, h); w.Code != http.StatusNotFound {
		t.Errorf("registry returning nil: status %d", w.Code)
	}
}

func TestResolverError(t *testing.T) {
	var s struct {
		session.SessionFunc
		resolverFunc
	}
	s.SessionFunc = func(context.Context, session.Receipt) (session.Result, error) {
		t.Error("sent despite the resolver failing")
		return session.Result{}, nil
	}
	s.resolverFunc = func(context.Context, string, string) (session.Message, error) {
		return session.Message{}, errors.New("index corrupted")
	}
	reg := session.NewMemoryRegistry()
	reg.Set("demo", s)
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "corrupted") {
		t.Errorf("status %d, body %s", w.Code, w.Body)
	}
}

type resolverFunc func(ctx context.Context, chat, id string) (session.Message, error)

func (f resolverFunc) ResolveMessage(ctx context.Context, chat, id string) (session.Message, error) {
	return f(ctx, chat, id)
}

func TestPathSession(t *testing.T) {
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("demo", "other"), seenhandler.WithNoAuth(),
		seenhandler.WithPathSession(seenhandler.PathValue("session")))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sessions/{session}/seen", h)

	w := request{path: "/sessions/other/seen", body: `{"chatId":"15551234567","messageIds":["A1"]}`}.do(t, mux)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0].Session != "other" {
		t.Errorf("calls = %+v, want one on session other", calls)
	}
	w = request{path: "/sessions/other/seen", body: `{"session":"other","chatId":"15551234567","messageIds":["A2"]}`}.do(t, mux)
	if w.Code != http.StatusOK {
		t.Errorf("same session in path and body: status %d, body %s", w.Code, w.Body)
	}
	w = request{path: "/sessions/other/seen", body: `{"session":"demo","chatId":"15551234567","messageIds":["A3"]}`}.do(t, mux)
	got := decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusBadRequest || len(got.Error.Fields) != 1 || got.Error.Fields[0].Rule != "conflict" {
		t.Errorf("path and body disagree: status %d, body %+v", w.Code, got)
	}
}

func TestMount(t *testing.T) {
	h, fake := newHandler(t)
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)
	for _, path := range []string{seenhandler.PathWasend, seenhandler.PathWawp, seenhandler.PathWAHA} {
		w := request{path: path, body: `{"session":"demo","chatId":"15551234567","messageIds":["` + strings.ReplaceAll(path, "/", "") + `"]}`}.do(t, mux)
		if w.Code != seenOK(path) {
			t.Errorf("%s: status %d, body %s", path, w.Code, w.Body)
		}
		if w := (request{method: http.MethodGet, path: path}).do(t, mux); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s: status %d, Allow %q", path, w.Code, w.Header().Get("Allow"))
		}
	}
	if n := len(fake.Receipts()); n != 3 {
		t.Errorf("sent %d receipts, want 3", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	reg := session.NewMemoryRegistry()
	tests := []struct {
		name string
		reg  session.Registry
		opts []seenhandler.Option
	}{
		{"nil registry", nil, []seenhandler.Option{seenhandler.WithNoAuth()}},
		{"no auth", reg, nil},
		{"both auth and no auth", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithAuth(seenhandler.AuthenticatorFunc(nil))}},
		{"nil authenticator", reg, []seenhandler.Option{seenhandler.WithAuth(nil)}},
		{"nil logger", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithLogger(nil)}},
		{"negative body limit", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithRequestLimits(-1, 0)}},
		{"negative max ids", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithRequestLimits(0, -1)}},
		{"negative timeout", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithTimeout(-time.Second)}},
		{"zero retry-after", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithRetryAfter(0)}},
		{"nil path extractor", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithPathSession(nil)}},
		{"nil later", reg, []seenhandler.Option{seenhandler.WithNoAuth(), seenhandler.WithLater(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := seenhandler.New(tc.reg, tc.opts...); err == nil {
				t.Errorf("New = %v, want an error", h)
			}
		})
	}
}

func TestNewStaticAuth(t *testing.T) {
	if _, err := seenhandler.NewStaticAuth(map[string][]string{"": {"*"}}); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := seenhandler.NewStaticAuth(map[string][]string{"t": nil}); err == nil {
		t.Error("token with no sessions accepted")
	}
	a, err := seenhandler.NewStaticAuth(map[string][]string{"all": {"*"}, "some": {"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		token, session string
		want           error
	}{
		{"all", "x", nil}, {"some", "a", nil}, {"some", "b", nil}, {"some", "", nil},
		{"some", "c", seenhandler.ErrForbidden}, {"", "a", seenhandler.ErrUnauthorized},
		{"al", "a", seenhandler.ErrUnauthorized}, {"all ", "a", seenhandler.ErrUnauthorized},
	} {
		_, err := a.Authenticate(ctx, seenhandler.Credentials{Token: tc.token, Session: tc.session})
		if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Authenticate(%q, %q) = %v, want %v", tc.token, tc.session, err, tc.want)
		}
	}
}

// NewStaticAuth's Authenticator, which the handler asks about a request's
// token twice but has hash it once, answers every request, log line
// included, as the same Authenticator does behind an AuthenticatorFunc,
// which the handler asks as it asks any other.
func TestStaticAuthAnswersAsAnyAuthenticator(t *testing.T) {
	static, err := seenhandler.NewStaticAuth(map[string][]string{token: {seenhandler.AllSessions}, demoToken: {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(auth seenhandler.Authenticator) (http.Handler, *strings.Builder) {
		logs := new(strings.Builder)
		logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey || a.Key == "took" {
					return slog.Attr{}
				}
				return a
			}}))
		h, err := seenhandler.New(sessiontest.New().Registry("demo", "other"), seenhandler.WithAuth(auth), seenhandler.WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
		return h, logs
	}
	got, gotLogs := serve(static)
	want, wantLogs := serve(seenhandler.AuthenticatorFunc(static.Authenticate))
	bodies := map[string][]string{
		seenhandler.PathWasend: {`{"session":"demo","to":"15551234567","messageId":"A"}`, `{"session":"other","to":"15551234567","messageId":"A"}`,
			`{"to":"15551234567","messageId":"A"}`},
		seenhandler.PathWAHA: {`{"session":"demo","chatId":"15551234567","messageIds":["A"]}`, `{"session":"other","chatId":"15551234567","messageIds":["A"]}`,
			`{"session":"nowhere","chatId":"15551234567","messageIds":["A"]}`},
		seenhandler.PathWawp: {`{"instance_id":"demo","access_token":"` + demoToken + `","chatId":"15551234567","messageIds":["A"]}`,
			`{"instance_id":"other","access_token":"` + demoToken + `","chatId":"15551234567","messageIds":["A"]}`,
			`{"instance_id":"demo","access_token":"nope","chatId":"15551234567","messageIds":["A"]}`},
	}
	headers := []map[string]string{
		{}, {"Authorization": "Bearer " + demoToken}, {"Authorization": "Bearer nope"}, {"Authorization": ""},
		{"Authorization": "", "X-Api-Key": demoToken}, {"Authorization": "", "X-Api-Key": "nope"},
	}
	for path, list := range bodies {
		for _, body := range list {
			for _, header := range headers {
				rq := request{path: path, body: body, header: header}
				gotLogs.Reset()
				wantLogs.Reset()
				g, w := rq.do(t, got), rq.do(t, want)
				if g.Code != w.Code || g.Body.String() != w.Body.String() || !reflect.DeepEqual(g.Header(), w.Header()) {
					t.Errorf("%s %s %v: %d %v %s, want %d %v %s", path, body, header, g.Code, g.Header(), g.Body, w.Code, w.Header(), w.Body)
				}
				if gotLogs.String() != wantLogs.String() {
					t.Errorf("%s %s %v: logged\n%s\nwant\n%s", path, body, header, gotLogs, wantLogs)
				}
			}
		}
	}
}

// A session that is only a session.Session: no resolver, no unread list,
// no chat marking.
func plainHandler(t *testing.T) (*seenhandler.Handler, *sessiontest.Fake) {
	t.Helper()
	fake := sessiontest.New()
	reg := session.NewMemoryRegistry()
	reg.Set("demo", session.SessionFunc(fake.Session("demo").SendReceipt))
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	return h, fake
}

func TestIDsRequiredWithoutUnreadLister(t *testing.T) {
	h, fake := plainHandler(t)
	for _, tc := range []struct {
		name, path, body, field, rule string
	}{
		{"missing ids", seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567"}`, "messageIds", "required"},
		{"empty ids", seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567","messageIds":[]}`, "messageIds", "min"},
		{"missing messageId (wasend)", seenhandler.PathWasend, `{"session":"demo","to":"15551234567"}`, "messageId", "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := request{path: tc.path, body: tc.body}.do(t, h)
			got := decode[seenhandler.ErrorResponse](t, w)
			if w.Code != http.StatusBadRequest || got.Error.Code != seenhandler.CodeValidationFailed ||
				len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != tc.field || got.Error.Fields[0].Rule != tc.rule {
				t.Errorf("status %d, body %+v", w.Code, got)
			}
		})
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

func TestPlainSessionReportsNoChatMarking(t *testing.T) {
	h, _ := plainHandler(t)
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
	if w.Code != http.StatusCreated || strings.Contains(w.Body.String(), "chatMarkedRead") {
		t.Errorf("status %d, body %s", w.Code, w.Body)
	}
}

// An empty id list is a 400 on messageIds, whichever decoder reads the
// body (the plain fast path, encoding/json for a repeated key, the
// key-exact one for an escape), even for a session that lists unread
// messages: only an absent or null list asks for the whole chat.
func TestEmptyIDListIsNotTheWholeChat(t *testing.T) {
	h, fake := newHandler(t)
	fake.AddMessage("demo", session.Message{Chat: user, ID: "U1", Sender: user})
	for _, tc := range []struct{ name, body string }{
		{"plain", `{"session":"demo","chatId":"` + user + `","messageIds":[]}`},
		{"after null", `{"session":"demo","chatId":"` + user + `","messageIds":null,"messageIds":[]}`},
		{"escaped", `{"session":"d\u0065mo","chatId":"` + user + `","messageIds":[]}`},
		{"with a messageId", `{"session":"demo","chatId":"` + user + `","messageId":"U1","messageIds":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := request{body: tc.body}.do(t, h)
			got := decode[seenhandler.ErrorResponse](t, w)
			if w.Code != http.StatusBadRequest || got.Error.Code != seenhandler.CodeValidationFailed ||
				len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != "messageIds" || got.Error.Fields[0].Rule != "min" {
				t.Errorf("status %d, body %+v", w.Code, got)
			}
		})
	}
	if n, reads := len(fake.Calls()), fake.ChatReads(); n != 0 || len(reads) != 0 {
		t.Errorf("%d receipts and chat reads %+v for empty lists", n, reads)
	}
	// null and an absent list still read the chat.
	for _, body := range []string{`{"session":"demo","chatId":"` + user + `","messageIds":null}`, `{"session":"demo","chatId":"` + user + `"}`} {
		if w := (request{body: body}).do(t, h); w.Code != http.StatusCreated {
			t.Errorf("%s: status %d, body %s", body, w.Code, w.Body)
		}
	}
}

func TestUnreadChat(t *testing.T) {
	synctest.Test(t, testUnreadChat) // the receipts are stamped fixedNow
}

func testUnreadChat(t *testing.T) {
	h, fake := newHandler(t, seenhandler.WithRequestLimits(0, 2))
	fake.AddMessage("demo", session.Message{Chat: group, ID: "OLD", Sender: sender})
	fake.AddMessage("demo", session.Message{Chat: group, ID: "MINE", FromMe: true})
	fake.AddMessage("demo", session.Message{Chat: group, ID: "U1", Sender: sender2})
	fake.AddMessage("demo", session.Message{Chat: group, ID: "U2", Sender: sender})
	fake.AddMessage("demo", session.Message{Chat: user, ID: "DM", Sender: user})
	body := `{"session":"demo","chatId":"` + group + `"}`
	fake.MarkUnread("demo", group) // its owner marked it unread: the first read needs more than its receipts

	// At most WithRequestLimits' maxMessageIDs: the newest two unread.
	w := request{body: body}.do(t, h)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d, body %s", w.Code, w.Body)
	}
	got := decode[seenhandler.Response](t, w)
	want := []seenhandler.SentReceipt{
		{ChatID: group, Sender: sender2, MessageIDs: []string{"U1"}, Type: "read"},
		{ChatID: group, Sender: sender, MessageIDs: []string{"U2"}, Type: "read"},
	}
	if !reflect.DeepEqual(got.Receipts, want) || got.ChatRead != string(session.ChatReadScheduled) {
		t.Errorf("first call: %+v", got)
	}
	reads := fake.ChatReads()
	if len(reads) != 1 || reads[0].ChatRead != (session.ChatRead{Chat: group, LastMessageID: "U2", LastSender: sender, Timestamp: fixedNow}) {
		t.Errorf("chat reads = %+v", reads)
	}

	// Then the one left; then nothing.
	got = decode[seenhandler.Response](t, request{body: body}.do(t, h))
	if len(got.Receipts) != 1 || got.Receipts[0].MessageIDs[0] != "OLD" {
		t.Errorf("second call: %+v", got)
	}
	// Nothing unread in a chat the session knows: the answer says so, and
	// the session is still asked to clear the chat's badge, up to its
	// newest known message (no LastMessageID); no longer marked unread, it
	// needs nothing more.
	w = request{body: body}.do(t, h)
	got = decode[seenhandler.Response](t, w)
	if w.Code != http.StatusCreated || got.Acknowledged || len(got.Receipts) != 0 ||
		got.Reason != seenhandler.ReasonNothingUnread || got.ChatRead != "" || got.ChatMarkedRead != nil {
		t.Errorf("third call: status %d, %+v", w.Code, got)
	}
	if n := len(fake.Receipts()); n != 3 {
		t.Errorf("sent %d receipts, want 3", n)
	}
	reads = fake.ChatReads()
	if len(reads) != 3 || reads[2].ChatRead != (session.ChatRead{Chat: group}) {
		t.Errorf("chat reads = %+v", reads)
	}
}

// A chat-only request that finds nothing to mark says
// why, distinctly: nothing_unread (a chat marked unread still has its mark
// cleared) or chat_unknown (nothing is sent); played requests clear no
// badge.
func TestUnreadChatNothingToMark(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		unread     bool // the chat was marked unread
		markErr    error
		want       string
	}{
		{"known chat, all read", `{"session":"demo","chatId":"15551234567"}`, false, nil,
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"reason":"nothing_unread"}`},
		{"known chat, marked unread", `{"session":"demo","chatId":"15551234567"}`, true, nil,
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"chatRead":"scheduled","reason":"nothing_unread"}`},
		{"known chat, mark not cleared", `{"session":"demo","chatId":"15551234567"}`, true, errors.New("no app state keys"),
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"chatRead":"unavailable","chatMarkedRead":false,"reason":"nothing_unread"}`},
		{"known chat, marking off", `{"session":"demo","chatId":"15551234567"}`, true, fmt.Errorf("off: %w", errors.ErrUnsupported),
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"reason":"nothing_unread"}`},
		{"unknown chat", `{"session":"demo","chatId":"15559999999"}`, false, nil,
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15559999999@s.whatsapp.net","receipts":[],"skipped":[],"reason":"chat_unknown"}`},
		{"played, known chat", `{"session":"demo","chatId":"15551234567","type":"played"}`, true, nil,
			`{"success":true,"acknowledged":false,"session":"demo","chatId":"15551234567@s.whatsapp.net","receipts":[],"skipped":[],"reason":"nothing_unread"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fake := newHandler(t)
			fake.AddMessage("demo", session.Message{Chat: user, ID: "MINE", FromMe: true})
			if tc.unread {
				fake.MarkUnread("demo", user)
			}
			fake.SetMarkChatReadError(tc.markErr)
			w := request{body: tc.body}.do(t, h)
			if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusCreated || got != tc.want {
				t.Errorf("status %d\n got %s\nwant %s", w.Code, got, tc.want)
			}
			if n := len(fake.Receipts()); n != 0 {
				t.Errorf("%d receipts sent", n)
			}
		})
	}
}

// The Fake, a session.ChatReadMarker as the whatsmeow backend, needs more
// than the receipts only for a chat marked unread: it then schedules the
// patch, or says unavailable when it cannot.
func TestChatMarking(t *testing.T) {
	body := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	for _, tc := range []struct {
		name   string
		unread bool // the chat was marked unread
		err    error
		body   string
		want   string // the chatRead members, or "" for absent
	}{
		{"the receipts suffice", false, nil, body, ""},
		{"marked unread", true, nil, body, `"chatRead":"scheduled"}`},
		{"marked unread, failed", true, errors.New("no app state keys"), body, `"chatRead":"unavailable","chatMarkedRead":false`},
		{"turned off", true, fmt.Errorf("off: %w", errors.ErrUnsupported), body, ""},
		{"played receipts do not mark", true, nil, `{"session":"demo","chatId":"15551234567","messageIds":["A1"],"type":"played"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fake := newHandler(t)
			if tc.unread {
				fake.MarkUnread("demo", user)
			}
			fake.SetMarkChatReadError(tc.err)
			w := request{body: tc.body}.do(t, h)
			if w.Code != http.StatusCreated {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			if tc.want == "" && strings.Contains(w.Body.String(), "chatRead") || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("body %s, want %s", w.Body, tc.want)
			}
			if strings.Contains(w.Body.String(), "app state") {
				t.Errorf("body leaks the backend's error: %s", w.Body)
			}
		})
	}
}

// markingSession is a session.ChatReadMarker that answers a set state and
// error, and records its calls.
type markingSession struct {
	session.SessionFunc
	state session.ChatReadState
	err   error
	calls []session.ChatRead
}

func (s *markingSession) MarkChatRead(_ context.Context, c session.ChatRead) (session.ChatReadState, error) {
	s.calls = append(s.calls, c)
	return s.state, s.err
}

// A session.ChatReadMarker says what became of the chat: chatRead is its
// state; chatMarkedRead, the older field, is true when done, false when
// unavailable and absent when scheduled (the badge is not cleared yet). A
// failure is reported unavailable without the backend's text.
func TestChatReadStates(t *testing.T) {
	body := `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`
	for _, tc := range []struct {
		name  string
		state session.ChatReadState
		err   error
		body  string
		want  string // the answer's end
	}{
		{"done", session.ChatReadDone, nil, body, `"skipped":[],"chatRead":"done","chatMarkedRead":true}`},
		{"scheduled", session.ChatReadScheduled, nil, body, `"skipped":[],"chatRead":"scheduled"}`},
		{"the receipts suffice", "", nil, body, `"skipped":[]}`},
		{"no keys yet", session.ChatReadUnavailable, nil, body, `"skipped":[],"chatRead":"unavailable","chatMarkedRead":false}`},
		{"failed", session.ChatReadUnavailable, errors.New("store down"), body, `"skipped":[],"chatRead":"unavailable","chatMarkedRead":false}`},
		{"failed, no state", "", errors.New("store down"), body, `"skipped":[],"chatRead":"unavailable","chatMarkedRead":false}`},
		{"done but failed", session.ChatReadDone, errors.New("store down"), body, `"skipped":[],"chatRead":"unavailable","chatMarkedRead":false}`},
		{"turned off", session.ChatReadUnavailable, fmt.Errorf("off: %w", errors.ErrUnsupported), body, `"skipped":[]}`},
		{"played receipts do not mark", session.ChatReadScheduled, nil, `{"session":"demo","chatId":"15551234567","messageIds":["A1"],"type":"played"}`, `"skipped":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := &markingSession{state: tc.state, err: tc.err,
				SessionFunc: func(_ context.Context, r session.Receipt) (session.Result, error) {
					return session.Result{Type: r.Type}, nil
				}}
			reg := session.NewMemoryRegistry()
			reg.Set("demo", sess)
			h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
			if err != nil {
				t.Fatal(err)
			}
			w := request{body: tc.body}.do(t, h)
			if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusCreated || !strings.HasSuffix(got, tc.want) {
				t.Errorf("status %d, body %s, want …%s", w.Code, got, tc.want)
			}
			if strings.Contains(w.Body.String(), "store down") {
				t.Errorf("body leaks the backend's error: %s", w.Body)
			}
			if tc.name == "scheduled" && (len(sess.calls) != 1 || sess.calls[0].LastMessageID != "A1") {
				t.Errorf("MarkChatRead calls %+v", sess.calls)
			}
		})
	}
}

// A backend (the dedup of session.Decorate, say) that reports duplicates: they are
// skipped with reason duplicate and are not in the receipts.
func TestDuplicatesReported(t *testing.T) {
	var (
		mu  sync.Mutex // a request's receipts are sent at once
		got []session.Receipt
	)
	reg := session.NewMemoryRegistry()
	reg.Set("demo", session.SessionFunc(func(_ context.Context, r session.Receipt) (session.Result, error) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		var dups []string
		for _, id := range r.MessageIDs {
			if strings.HasPrefix(id, "OLD") {
				dups = append(dups, id)
			}
		}
		return session.Result{Type: r.Type, Duplicates: dups}, nil
	}))
	h, err := seenhandler.New(reg, seenhandler.WithNoAuth())
	if err != nil {
		t.Fatal(err)
	}
	w := request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["false_` + group + `_OLD1_15557654321@c.us","false_` + group + `_NEW1_15557654321@c.us","false_` + group + `_OLD2_15550001111@c.us"]}`}.do(t, h)
	resp := decode[seenhandler.Response](t, w)
	want := seenhandler.Response{Success: true, Acknowledged: true, Session: "demo", ChatID: group,
		Receipts: []seenhandler.SentReceipt{{ChatID: group, Sender: sender, MessageIDs: []string{"NEW1"}, Type: "read"}},
		Skipped: []seenhandler.Skipped{
			{MessageID: "false_" + group + "_OLD1_15557654321@c.us", Reason: seenhandler.SkipDuplicate},
			{MessageID: "false_" + group + "_OLD2_15550001111@c.us", Reason: seenhandler.SkipDuplicate},
		}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("got  %+v\nwant %+v", resp, want)
	}
	if len(got) != 2 {
		t.Errorf("backend called %d times, want 2", len(got))
	}
	// All duplicates: 200, nothing acknowledged.
	w = request{body: `{"session":"demo","chatId":"15551234567","messageIds":["OLD3"]}`}.do(t, h)
	if resp := decode[seenhandler.Response](t, w); resp.Acknowledged || len(resp.Receipts) != 0 || len(resp.Skipped) != 1 {
		t.Errorf("all duplicates: %+v", resp)
	}
}

// The chat is marked read up to the newest message the session knows the
// time of, whatever the order of the request's ids.
func TestChatMarkedReadUpToTheNewest(t *testing.T) {
	h, fake := newHandler(t)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	fake.AddMessage("demo", session.Message{Chat: group, ID: "OLD", Sender: sender, Timestamp: t0})
	fake.AddMessage("demo", session.Message{Chat: group, ID: "NEW", Sender: sender2, Timestamp: t0.Add(time.Minute)})
	fake.AddMessage("demo", session.Message{Chat: group, ID: "MID", Sender: sender, Timestamp: t0.Add(time.Second)})
	w := request{body: `{"session":"demo","chatId":"` + group + `","messageIds":["NEW","OLD","MID"]}`}.do(t, h)
	if w.Code != http.StatusCreated {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	reads := fake.ChatReads()
	want := session.ChatRead{Chat: group, LastMessageID: "NEW", LastSender: sender2, Timestamp: t0.Add(time.Minute)}
	if len(reads) != 1 || reads[0].ChatRead != want {
		t.Errorf("chat reads %+v, want %+v", reads, want)
	}
}

// An empty id is a bad id, not an absent one (which asks
// for the whole chat), and a null in messageIds is said to be null.
func TestEmptyAndNullMessageIDs(t *testing.T) {
	tests := []struct {
		name, path, body string
		field, message   string
	}{
		{"empty messageId", seenhandler.PathWasend, `{"session":"demo","to":"15551234567","messageId":""}`, "messageId", "got 0"},
		{"empty messageId beside a chat", seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567","messageId":""}`, "messageId", "got 0"},
		{"empty in messageIds", seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567","messageIds":["A1",""]}`, "messageIds[1]", "got 0"},
		{"null in messageIds", seenhandler.PathWAHA, `{"session":"demo","chatId":"15551234567","messageIds":[null]}`, "messageIds[0]", "is null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fake := newHandler(t)
			fake.AddMessage("demo", session.Message{Chat: user, ID: "UNREAD1", Sender: user})
			w := request{path: tc.path, body: tc.body}.do(t, h)
			got := decode[seenhandler.ErrorResponse](t, w)
			if w.Code != http.StatusBadRequest || len(got.Error.Fields) != 1 || got.Error.Fields[0].Field != tc.field ||
				!strings.Contains(got.Error.Fields[0].Message, tc.message) {
				t.Errorf("%d %+v, want 400 on %s saying %q", w.Code, got, tc.field, tc.message)
			}
			if sent := fake.Receipts(); len(sent) != 0 {
				t.Errorf("sent %+v", sent)
			}
		})
	}
	// null and absent are the same: the whole chat.
	for _, body := range []string{`{"session":"demo","chatId":"15551234567"}`, `{"session":"demo","chatId":"15551234567","messageId":null,"messageIds":null}`} {
		h, fake := newHandler(t)
		fake.AddMessage("demo", session.Message{Chat: user, ID: "UNREAD1", Sender: user})
		if w := (request{body: body}).do(t, h); w.Code != http.StatusCreated || len(fake.Receipts()) != 1 {
			t.Errorf("%s: %d %s, sent %+v; want the chat's unread message sent", body, w.Code, w.Body, fake.Receipts())
		}
	}
}

// Keys match exactly; other spellings of ours are
// unknown fields, ignored, whichever comes last.
func TestKeysMatchExactly(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		session    string // where the receipt went
	}{
		{"upper-case duplicate after", `{"session":"demo","SESSION":"other","chatId":"15551234567","messageIds":["A1"]}`, 201, "demo"},
		{"upper-case duplicate before", `{"Session":"other","session":"demo","chatId":"15551234567","messageIds":["A1"]}`, 201, "demo"},
		{"folded with long s", `{"session":"demo","ſession":"other","chatId":"15551234567","messageIds":["A1"]}`, 201, "demo"},
		{"escaped exact key counts", `{"\u0073ession":"demo","chatId":"15551234567","messageIds":["A1"]}`, 201, "demo"},
		{"other spellings only", `{"SESSION":"demo","ChatId":"15551234567","MessageIds":["A1"]}`, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, fake := newHandler(t)
			w := request{body: tc.body}.do(t, h)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.session == "" {
				if n := len(fake.Receipts()); n != 0 {
					t.Errorf("sent %d receipts", n)
				}
				return
			}
			if n, m := len(fake.Session(tc.session).Receipts()), len(fake.Receipts()); n != 1 || m != 1 {
				t.Errorf("session %s sent %d of %d receipts", tc.session, n, m)
			}
		})
	}
}

// A request with thousands of bad ids gets a short
// answer: the first 20 field errors and the total.
func TestErrorBodyCapped(t *testing.T) {
	h, _ := newHandler(t)
	ids := make([]string, 6000)
	for i := range ids {
		ids[i] = `"bad id"`
	}
	body := `{"session":"demo","chatId":"15551234567","messageIds":[` + strings.Join(ids, ",") + `]}`
	w := request{body: body}.do(t, h)
	size := w.Body.Len()
	got := decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusBadRequest || len(got.Error.Fields) != 20 || got.Error.FieldsTotal < 6000 {
		t.Errorf("%d: %d fields, total %d; want 400 with 20 fields and a total of at least 6000", w.Code, len(got.Error.Fields), got.Error.FieldsTotal)
	}
	t.Logf("answer: %d bytes for a %d-byte request", size, len(body))
	if size > 8<<10 {
		t.Errorf("the answer is %d bytes for a %d-byte request", size, len(body))
	}
}

// A session that is connected but waits for WhatsApp (the account's
// read-receipt setting after connecting) answers a 503 that says so — not
// that it is not connected — with Retry-After; its status says it works.
// A status update without its author names the author, not a group's
// sender.
func TestNotReadyAndStatusMessages(t *testing.T) {
	h, fake := newHandler(t)
	fake.Inject(sessiontest.Fault{Session: "demo", Err: fmt.Errorf("%w: the account's read-receipt setting is unknown", session.ErrNotReady)})
	w := request{body: `{"session":"demo","chatId":"15551234567","messageIds":["A1"]}`}.do(t, h)
	got := decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusServiceUnavailable || got.Error.Code != seenhandler.CodeSessionNotConnected || w.Header().Get("Retry-After") == "" ||
		strings.Contains(got.Message, "not connected") || !strings.Contains(got.Message, "is connected to WhatsApp and waits for it") {
		t.Errorf("not ready: %d %+v, Retry-After %q", w.Code, got, w.Header().Get("Retry-After"))
	}
	w = request{method: http.MethodGet, path: seenhandler.PathWawpStatus + "?session=demo"}.do(t, http.HandlerFunc(h.ServeStatus))
	if st := decode[seenhandler.StatusResponse](t, w); st.Status != seenhandler.StateWorking || !st.Connected {
		t.Errorf("status while waiting for WhatsApp: %+v", st)
	}

	w = request{body: `{"session":"other","chatId":"status@broadcast","messageIds":["S1"]}`}.do(t, h)
	got = decode[seenhandler.ErrorResponse](t, w)
	if w.Code != http.StatusBadRequest || len(got.Error.Fields) != 1 ||
		got.Error.Fields[0].Message != "is required for status updates: the author of messageIds[0] (S1) is not known" {
		t.Errorf("status without its author: %d %+v", w.Code, got)
	}
}
