package seenhandler

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	yes, no := true, false
	for _, r := range []response{
		{},
		{Success: true, Acknowledged: true, Session: "demo", ChatID: "1@s.whatsapp.net",
			Receipts: []sentReceipt{{ChatID: "1@g.us", Sender: "2@s.whatsapp.net", MessageIDs: []string{"A", "B"}, Type: "read"}, {ChatID: "x"},
				{ChatID: "3@lid", Sender: "4@lid", RequestedChatID: "3@s.whatsapp.net", RequestedSender: "4@s.whatsapp.net", MessageIDs: []string{"C"}, Type: "read"}},
			Skipped: []skippedID{{MessageID: "true_1@c.us_C", Reason: SkipFromMe}}, ChatMarkedRead: &yes},
		{Success: true, Accepted: true, Receipts: []sentReceipt{}, Skipped: []skippedID{}, ChatMarkedRead: &no},
		{Success: true, Receipts: []sentReceipt{}, Skipped: []skippedID{}, ChatMarkedRead: &yes, Reason: ReasonNothingUnread},
		{Success: true, Receipts: []sentReceipt{}, Skipped: []skippedID{}, ChatRead: "scheduled", Typing: TypingStarted},
		{Success: true, Accepted: true, Typing: "<\"\u2028>"},
		{Session: "quote\" back\\slash <html> & \u2028\u2029 \x00\x1f\x7f é 😀 \xff\xfe", ChatID: "\t\n\r\b\f"},
		{Success: true, Accepted: true, Receipts: []sentReceipt{}, Skipped: []skippedID{},
			Queued: &queuedInfo{Reason: CodeSessionNotConnected, Message: "down <&>", RetryUntil: time.Date(2026, 11, 3, 10, 0, 0, 123456000, time.UTC)}},
		{Accepted: true, Queued: &queuedInfo{Reason: CodeSessionNotLoggedIn, RetryUntil: time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)}},
		{Success: true, Accepted: true, Receipts: []sentReceipt{}, Skipped: []skippedID{}, InFlight: []sentReceipt{}},
		{Success: true, Accepted: true, Receipts: []sentReceipt{}, Skipped: []skippedID{}, Typing: TypingUnavailable,
			InFlight: []sentReceipt{{ChatID: "1@g.us", Sender: "2@s.whatsapp.net", MessageIDs: []string{"A"}, Type: "read"}, {ChatID: "x"}}},
	} {
		got := r.appendJSON(nil)
		if want := encodingJSON(t, &r); !bytes.Equal(got, want) {
			t.Errorf("appendJSON\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("demo", "15551234567@s.whatsapp.net", "3EB0", "from_me", true)
	f.Add("\"\\\x00\u2028", "\xff", "é😀", "<>&", false)
	f.Fuzz(func(t *testing.T, session, chat, id, reason string, flag bool) {
		r := response{Success: flag, Acknowledged: !flag, Accepted: flag, Session: session, ChatID: chat,
			Receipts: []sentReceipt{{ChatID: chat, Sender: session, MessageIDs: []string{id, reason}, Type: reason}},
			Skipped:  []skippedID{{MessageID: id, Reason: Reason(reason)}}, ChatMarkedRead: &flag, Reason: Reason(reason), Typing: Typing(id)}
		if got, want := r.appendJSON(nil), encodingJSON(t, &r); !bytes.Equal(got, want) {
			t.Errorf("appendJSON\n got %q\nwant %q", got, want)
		}
	})
}
