package sessiontest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestFakeConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Harness {
		fake := sessiontest.New()
		return sessiontest.Harness{
			Session:    fake.Session("conformance"),
			Sent:       fake.Receipts,
			Disconnect: func() { fake.Inject(sessiontest.Fault{Err: session.ErrNotConnected}) },
		}
	})
}

func rc(chat string, ids ...string) session.Receipt {
	return session.Receipt{Chat: chat, MessageIDs: ids, Type: session.ReceiptRead, Timestamp: time.Unix(1, 0)}
}

func TestFakeFaults(t *testing.T) {
	ctx := context.Background()
	fake := sessiontest.New()
	a, b := fake.Session("a"), fake.Session("b")
	errBoom := errors.New("boom")

	remove := fake.Inject(sessiontest.Fault{Session: "a", Call: 2, Err: errBoom})
	fake.Inject(sessiontest.Fault{Chat: "2@s.whatsapp.net", Err: session.ErrNotConnected})

	if _, err := a.SendReceipt(ctx, rc("1@s.whatsapp.net", "X1")); err != nil {
		t.Errorf("call 1 on a: %v", err)
	}
	if _, err := a.SendReceipt(ctx, rc("1@s.whatsapp.net", "X2")); !errors.Is(err, errBoom) {
		t.Errorf("call 2 on a: %v, want boom", err)
	}
	if _, err := a.SendReceipt(ctx, rc("1@s.whatsapp.net", "X3")); err != nil {
		t.Errorf("call 3 on a: %v", err)
	}
	if _, err := b.SendReceipt(ctx, rc("1@s.whatsapp.net", "X4")); err != nil {
		t.Errorf("call on b: %v", err)
	}
	if _, err := b.SendReceipt(ctx, rc("2@s.whatsapp.net", "X5")); !errors.Is(err, session.ErrNotConnected) {
		t.Errorf("call on chat 2: %v, want not connected", err)
	}
	remove()
	fake.Inject(sessiontest.Fault{Session: "a", Call: 1, Err: errBoom}) // counts from its own start
	if _, err := a.SendReceipt(ctx, rc("1@s.whatsapp.net", "X6")); !errors.Is(err, errBoom) {
		t.Errorf("new fault, call 1: %v, want boom", err)
	}

	var ids []string
	for _, r := range fake.Receipts() {
		ids = append(ids, r.MessageIDs...)
	}
	if want := []string{"X1", "X3", "X4"}; !equal(ids, want) {
		t.Errorf("sent ids %v, want %v", ids, want)
	}
	if got := b.Receipts(); len(got) != 1 || got[0].MessageIDs[0] != "X4" {
		t.Errorf("b.Receipts() = %+v, want X4 only", got)
	}
	calls := fake.Calls()
	if len(calls) != 6 {
		t.Fatalf("%d calls, want 6", len(calls))
	}
	for i, c := range calls {
		if c.Seq != i+1 {
			t.Errorf("call %d has Seq %d", i, c.Seq)
		}
	}
	if calls[3].Session != "b" || calls[1].Err == nil {
		t.Errorf("calls = %+v", calls)
	}

	fake.Reset()
	if len(fake.Calls()) != 0 {
		t.Error("Reset kept calls")
	}
	if _, err := b.SendReceipt(ctx, rc("2@s.whatsapp.net", "X7")); err != nil {
		t.Errorf("after Reset: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFakeLatencyHonoursContext(t *testing.T) {
	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := fake.Session("a").SendReceipt(ctx, rc("1@s.whatsapp.net", "X1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if n := len(fake.Receipts()); n != 0 {
		t.Errorf("sent %d receipts", n)
	}
}

func TestFakePanicIsRecorded(t *testing.T) {
	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Panic: "kaboom"})
	func() {
		defer func() {
			if v := recover(); v != "kaboom" {
				t.Errorf("recovered %v, want kaboom", v)
			}
		}()
		_, _ = fake.Session("a").SendReceipt(context.Background(), rc("1@s.whatsapp.net", "X1"))
	}()
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].Err == nil {
		t.Errorf("calls = %+v, want one failed call", calls)
	}
}

// With read receipts off the fake reports the types the whatsmeow backend
// sends, as WhatsApp Web: read-self and played-self outside groups, read and
// played in groups.
func TestFakeReadReceiptsOff(t *testing.T) {
	fake := sessiontest.New()
	fake.SetReadReceiptsOff(true)
	s := fake.Session("a")
	for _, tc := range []struct {
		chat  string
		asked session.ReceiptType
		want  session.ReceiptType
	}{
		{"1@s.whatsapp.net", session.ReceiptRead, session.ReceiptReadSelf},
		{"1@s.whatsapp.net", session.ReceiptPlayed, session.ReceiptPlayedSelf},
		{"status@broadcast", session.ReceiptPlayed, session.ReceiptPlayedSelf},
		{"1@g.us", session.ReceiptRead, session.ReceiptRead},
		{"1@g.us", session.ReceiptPlayed, session.ReceiptPlayed},
	} {
		r := rc(tc.chat, "X1")
		r.Type = tc.asked
		if !strings.HasSuffix(tc.chat, "@s.whatsapp.net") {
			r.Sender = "2@s.whatsapp.net" // group and status receipts name the sender
		}
		res, err := s.SendReceipt(context.Background(), r)
		if err != nil || res.Type != tc.want {
			t.Errorf("%s %s: %q, %v; want %q", tc.chat, tc.asked, res.Type, err, tc.want)
		}
	}
}

func TestFakeResolver(t *testing.T) {
	fake := sessiontest.New()
	m := session.Message{Chat: "1@g.us", ID: "M1", Sender: "2@s.whatsapp.net"}
	fake.AddMessage("a", m)
	got, err := fake.Session("a").ResolveMessage(context.Background(), "1@g.us", "M1")
	if err != nil || got != m {
		t.Errorf("ResolveMessage = %+v, %v", got, err)
	}
	if _, err := fake.Session("b").ResolveMessage(context.Background(), "1@g.us", "M1"); !errors.Is(err, session.ErrMessageNotFound) {
		t.Errorf("other session: %v, want not found", err)
	}
}

// Like the whatsmeow backend, the Fake knows what the account has read: a
// message is Read once a receipt for it went out (played too), or when it
// is added again with Read set (read on another device); read stays read,
// and UnreadMessages leaves it out.
func TestFakeKnowsWhatWasRead(t *testing.T) {
	ctx := context.Background()
	fake := sessiontest.New()
	s := fake.Session("a")
	for _, id := range []string{"M1", "M2", "M3"} {
		fake.AddMessage("a", session.Message{Chat: "1@s.whatsapp.net", ID: id, Sender: "1@s.whatsapp.net"})
	}
	if _, err := s.SendReceipt(ctx, session.Receipt{Chat: "1@s.whatsapp.net", MessageIDs: []string{"M1"}, Type: session.ReceiptPlayed}); err != nil {
		t.Fatal(err)
	}
	fake.AddMessage("a", session.Message{Chat: "1@s.whatsapp.net", ID: "M2", Sender: "1@s.whatsapp.net", Read: true})
	fake.AddMessage("a", session.Message{Chat: "1@s.whatsapp.net", ID: "M2", Sender: "1@s.whatsapp.net"})
	for id, want := range map[string]bool{"M1": true, "M2": true, "M3": false} {
		if m, err := s.ResolveMessage(ctx, "1@s.whatsapp.net", id); err != nil || m.Read != want {
			t.Errorf("ResolveMessage(%s) = %+v, %v; want Read %v", id, m, err, want)
		}
	}
	unread, err := s.UnreadMessages(ctx, "1@s.whatsapp.net", 10)
	if err != nil || len(unread) != 1 || unread[0].ID != "M3" {
		t.Errorf("UnreadMessages = %+v, %v; want M3", unread, err)
	}
}

func TestFakeRegistry(t *testing.T) {
	fake := sessiontest.New()
	reg := fake.Registry("a", "b")
	if got := reg.Names(); !equal(got, []string{"a", "b"}) {
		t.Errorf("Names = %v", got)
	}
	s, err := reg.Lookup(context.Background(), "a")
	if err != nil || s != fake.Session("a") {
		t.Errorf("Lookup(a) = %v, %v", s, err)
	}
	if _, err := reg.Lookup(context.Background(), "c"); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Lookup(c) = %v", err)
	}
	reg.Remove("a")
	if _, err := reg.Lookup(context.Background(), "a"); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Lookup(a) after Remove = %v", err)
	}
}

func TestFakeIsRaceSafe(t *testing.T) {
	fake := sessiontest.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fake.Session([]string{"a", "b"}[i%2])
			for range 50 {
				_, _ = s.SendReceipt(context.Background(), rc("1@s.whatsapp.net", "X"))
				_ = fake.Calls()
				_ = fake.Receipts()
				fake.AddMessage("a", session.Message{Chat: "1@g.us", ID: "M"})
				remove := fake.Inject(sessiontest.Fault{Session: "zzz"})
				remove()
			}
		}()
	}
	wg.Wait()
	if n := len(fake.Receipts()); n != 400 {
		t.Errorf("sent %d receipts, want 400", n)
	}
}

// A session whose every call fails as not connected (or
// not logged in) says so in its Status.
func TestFakeStatusAgreesWithFaults(t *testing.T) {
	ctx := context.Background()
	fake := sessiontest.New()
	fake.Inject(sessiontest.Fault{Session: "down", Err: session.ErrNotConnected})
	fake.Inject(sessiontest.Fault{Session: "out", Err: session.ErrNotLoggedIn})
	fake.Inject(sessiontest.Fault{Session: "ok", Chat: "15551234567@s.whatsapp.net", Err: session.ErrNotConnected})
	remove := fake.Inject(sessiontest.Fault{Session: "later", Err: session.ErrNotConnected})
	for name, want := range map[string]session.Status{
		"down":  {LoggedIn: true, Paired: true},
		"out":   {Connected: true, Paired: true},
		"ok":    {Connected: true, LoggedIn: true, Paired: true}, // one chat only
		"later": {LoggedIn: true, Paired: true},
	} {
		if got := fake.Session(name).Status(ctx); got != want {
			t.Errorf("%s: Status = %+v, want %+v", name, got, want)
		}
	}
	remove()
	if got := fake.Session("later").Status(ctx); !got.Connected {
		t.Errorf("after the fault is removed: %+v", got)
	}
}

// WithMaxRecords bounds what the Fake remembers; Seq
// still counts every call.
func TestFakeMaxRecords(t *testing.T) {
	ctx := context.Background()
	fake := sessiontest.New(sessiontest.WithMaxRecords(3))
	s := fake.Session("demo")
	for i := range 10 {
		if _, err := s.SendReceipt(ctx, session.Receipt{Chat: "c", MessageIDs: []string{string(rune('A' + i))}, Type: session.ReceiptRead}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkChatRead(ctx, session.ChatRead{Chat: "c", LastMessageID: string(rune('A' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	calls := fake.Calls()
	if len(calls) != 3 || calls[0].Seq != 8 || calls[2].Seq != 10 || calls[2].Receipt.MessageIDs[0] != "J" || calls[2].Err != nil {
		t.Errorf("Calls = %+v, want the last 3 (Seq 8–10), finished", calls)
	}
	if n, m := len(fake.Receipts()), len(fake.ChatReads()); n != 3 || m != 3 {
		t.Errorf("%d receipts and %d chat reads remembered, want 3 each", n, m)
	}
	if n := len(sessiontest.New().Calls()); n != 0 {
		t.Errorf("a new Fake has %d calls", n)
	}
}
