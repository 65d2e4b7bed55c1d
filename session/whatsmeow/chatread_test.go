package whatsmeow_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types/events"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// withKeys stores an app-state key in dev, as whatsmeow does when the phone
// shares them.
func withKeys(t *testing.T, dev *store.Device) {
	t.Helper()
	if err := dev.AppStateKeys.PutAppStateSyncKey(context.Background(), []byte{0, 0, 0, 1},
		store.AppStateSyncKey{Data: bytes.Repeat([]byte{7}, 32), Fingerprint: []byte{1}, Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
}

// markUnread tells s, through the client's event dispatch, that the
// account's owner marked chats unread (an app-state mutation from another
// device).
func markUnread(fc *fakeClient, chats ...string) {
	for _, c := range chats {
		fc.emit(&events.MarkChatAsRead{JID: jid(c), Timestamp: ts,
			Action: &waSyncAction.MarkChatAsReadAction{Read: proto.Bool(false)}})
	}
}

func schedule(t *testing.T, s *bwm.Session, c session.ChatRead, want session.ChatReadState) {
	t.Helper()
	got, err := s.MarkChatRead(context.Background(), c)
	if err != nil || got != want {
		t.Fatalf("MarkChatRead(%s %s) = %q, %v; want %q", c.Chat, c.LastMessageID, got, err, want)
	}
}

// One mutation per chat per window, carrying the chat's newest message
// read, the window's chats in one patch, sent when the window ends, in the
// background.
func TestScheduleChatReadWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		dev := newDevice(t, true)
		withKeys(t, dev)
		s := mustNew(t, fc, dev) // the default window
		defer s.Close()
		markUnread(fc, dm, grp)
		t0 := ts
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D1", Timestamp: t0}, session.ChatReadScheduled)
		schedule(t, s, session.ChatRead{Chat: grp, LastMessageID: "G1", LastSender: member, Timestamp: t0}, session.ChatReadScheduled)
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D3", Timestamp: t0.Add(2 * time.Second)}, session.ChatReadScheduled)
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D2", Timestamp: t0.Add(time.Second)}, session.ChatReadScheduled) // older: ignored

		time.Sleep(bwm.DefaultChatReadWindow - time.Millisecond)
		synctest.Wait()
		if _, _, patches := fc.recorded(); len(patches) != 0 {
			t.Fatalf("%d patches before the window ended", len(patches))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		_, _, patches := fc.recorded()
		if len(patches) != 1 || len(patches[0].Mutations) != 2 {
			t.Fatalf("%d patches after the window, want 1 with a mutation per chat: %+v", len(patches), patches)
		}
		if fc.keys[0] != (msgKey{jid(grp), jid(member), "G1"}) || fc.keys[1] != (msgKey{jid(dm), jid(dm), "D3"}) {
			t.Errorf("patches name %+v, want G1 then the newest of the direct chat, D3", fc.keys)
		}

		// The patch went out: the chats are no longer marked unread, and
		// a read of them needs none.
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D4", Timestamp: t0.Add(3 * time.Second)}, "")

		// Nothing pending: no goroutine waits. The next read of a chat
		// marked unread opens a new window.
		markUnread(fc, dm)
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D4", Timestamp: t0.Add(3 * time.Second)}, session.ChatReadScheduled)
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		if _, _, patches := fc.recorded(); len(patches) != 2 || len(patches[1].Mutations) != 1 {
			t.Errorf("%d patches after the second window, want 2", len(patches))
		}
	})
}

// Sessions sharing a Manager's patch budget (WithChatReadRate) take turns:
// one whose window ended while the budget was spent waits, and its patch
// then carries the chats read meanwhile too.
func TestScheduleChatReadBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := rate.NewLimiter(rate.Every(10*time.Second), 1)
		fa, fb := newFakeClient(), newFakeClient()
		da, db := newDevice(t, true), newDevice(t, true)
		withKeys(t, da)
		withKeys(t, db)
		a := mustNew(t, fa, da, bwm.WithChatReadBudget(budget))
		defer a.Close()
		b := mustNew(t, fb, db, bwm.WithChatReadBudget(budget))
		defer b.Close()
		markUnread(fa, dm)
		markUnread(fb, dm, grp)
		schedule(t, a, session.ChatRead{Chat: dm, LastMessageID: "A1", Timestamp: ts}, session.ChatReadScheduled)
		time.Sleep(time.Second)
		schedule(t, b, session.ChatRead{Chat: dm, LastMessageID: "B1", Timestamp: ts}, session.ChatReadScheduled)
		time.Sleep(bwm.DefaultChatReadWindow) // both windows have ended
		synctest.Wait()
		_, _, pa := fa.recorded()
		_, _, pb := fb.recorded()
		if len(pa) != 1 || len(pb) != 0 {
			t.Fatalf("patches %d and %d, want the first session's only: the budget holds one", len(pa), len(pb))
		}
		schedule(t, b, session.ChatRead{Chat: grp, LastMessageID: "B2", LastSender: member, Timestamp: ts}, session.ChatReadScheduled)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if _, _, pb = fb.recorded(); len(pb) != 1 || len(pb[0].Mutations) != 2 {
			t.Fatalf("second session: %d patches %+v, want one with both chats once the budget allows", len(pb), pb)
		}
	})
}

// Close stops the window's goroutine; what was pending is not sent.
func TestScheduleChatReadClose(t *testing.T) {
	fc := newFakeClient()
	dev := newDevice(t, true)
	withKeys(t, dev)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the store's stay
	s := mustNew(t, fc, dev, bwm.WithChatReadWindow(time.Hour))
	markUnread(fc, dm)
	schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D1", Timestamp: ts}, session.ChatReadScheduled)
	s.Close()
	if _, _, patches := fc.recorded(); len(patches) != 0 {
		t.Errorf("%d patches sent", len(patches))
	}
	if got, _ := s.MarkChatRead(context.Background(), session.ChatRead{Chat: dm, LastMessageID: "D2", Timestamp: ts}); got != session.ChatReadUnavailable {
		t.Errorf("after Close: %q, want unavailable", got)
	}
}

// Without app-state keys: "unavailable", remembered until whatsmeow reports
// an app-state sync (or a new connection); nothing is sent meanwhile.
func TestScheduleChatReadWithoutKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		dev := newDevice(t, true)
		s := mustNew(t, fc, dev)
		defer s.Close()
		markUnread(fc, dm)
		c := session.ChatRead{Chat: dm, LastMessageID: "D1", Timestamp: ts}
		schedule(t, s, c, session.ChatReadUnavailable)
		withKeys(t, dev) // not told: still remembered as missing
		schedule(t, s, c, session.ChatReadUnavailable)
		fc.emit(&events.AppStateSyncComplete{Name: "regular_low"})
		schedule(t, s, c, session.ChatReadScheduled)
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		if _, _, patches := fc.recorded(); len(patches) != 1 {
			t.Errorf("%d patches, want 1", len(patches))
		}
	})
}

// keyStore is a device's app-state key store whose keys can vanish.
type keyStore struct {
	store.AppStateSyncKeyStore
	gone atomic.Bool
}

func (k *keyStore) GetLatestAppStateSyncKeyID(ctx context.Context) ([]byte, error) {
	if k.gone.Load() {
		return nil, nil
	}
	return k.AppStateSyncKeyStore.GetLatestAppStateSyncKeyID(ctx)
}

// Keys found at first but missing at the window's end (whatsmeow's "no app
// state keys"): the Session remembers. Another failure (the connection,
// say) is only logged.
func TestScheduleChatReadKeysGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		dev := newDevice(t, true)
		withKeys(t, dev)
		keys := &keyStore{AppStateSyncKeyStore: dev.AppStateKeys}
		dev.AppStateKeys = keys
		s := mustNew(t, fc, dev)
		defer s.Close()
		markUnread(fc, dm)

		fc.set(func(f *fakeClient) { f.appErr = errors.New("connection lost") })
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D1", Timestamp: ts}, session.ChatReadScheduled)
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D2", Timestamp: ts}, session.ChatReadScheduled)

		fc.set(func(f *fakeClient) {
			f.appErr = errors.New("no app state keys found, creating app state keys is not yet supported")
		})
		keys.gone.Store(true)
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D3", Timestamp: ts}, session.ChatReadUnavailable)
		if n := len(fc.keys); n != 2 {
			t.Errorf("%d chats tried, want 2", n)
		}
	})
}

// More chats than a patch carries: several patches in the window.
func TestScheduleChatReadManyChats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		dev := newDevice(t, true)
		withKeys(t, dev)
		s := mustNew(t, fc, dev)
		defer s.Close()
		for i := range 120 {
			markUnread(fc, fmt.Sprintf("1555000%04d@s.whatsapp.net", i))
			schedule(t, s, session.ChatRead{Chat: fmt.Sprintf("1555000%04d@s.whatsapp.net", i), LastMessageID: "X", Timestamp: ts}, session.ChatReadScheduled)
		}
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		_, _, patches := fc.recorded()
		var sizes []int
		for _, p := range patches {
			sizes = append(sizes, len(p.Mutations))
		}
		if fmt.Sprint(sizes) != "[50 50 20]" {
			t.Errorf("patches of %v mutations, want [50 50 20]", sizes)
		}
	})
}

// What MarkChatRead refuses, as MarkChatReadNow does.
func TestScheduleChatReadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []bwm.Option
		paired bool
		setup  func(*fakeClient)
		chat   string
		want   error
	}{
		{"off", []bwm.Option{bwm.WithMarkChatRead(false)}, true, nil, dm, errors.ErrUnsupported},
		{"channel", nil, true, nil, channel, errors.ErrUnsupported},
		{"status", nil, true, nil, "status@broadcast", errors.ErrUnsupported},
		{"bad chat", nil, true, nil, "nonsense", session.ErrInvalidReceipt},
		{"never paired", nil, false, nil, dm, session.ErrNotLoggedIn},
		{"not connected", nil, true, func(f *fakeClient) { f.connected = false }, dm, session.ErrNotConnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeClient()
			if tc.setup != nil {
				fc.set(tc.setup)
			}
			s := mustNew(t, fc, newDevice(t, tc.paired), tc.opts...)
			defer s.Close()
			if tc.chat != "nonsense" {
				markUnread(fc, tc.chat)
			}
			state, err := s.MarkChatRead(context.Background(), session.ChatRead{Chat: tc.chat, LastMessageID: "X", Timestamp: ts})
			if !errors.Is(err, tc.want) || state != session.ChatReadUnavailable {
				t.Errorf("= %q, %v; want unavailable, %v", state, err, tc.want)
			}
		})
	}
}

// A chat nobody marked unread needs no app-state patch: its read receipts
// clear the badge on the account's other devices, as WhatsApp Web's do.
// MarkChatRead answers "" (nothing to report) and nothing is sent; a
// chat marked unread on another device is patched once, until it is
// marked unread again; a mark cleared there (read: true, as the echo of a
// patch) needs none.
func TestScheduleChatReadOnlyMarkedUnread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := newFakeClient()
		dev := newDevice(t, true)
		withKeys(t, dev)
		s := mustNew(t, fc, dev)
		defer s.Close()
		for i := range 5 {
			schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: fmt.Sprintf("D%d", i), Timestamp: ts}, "")
		}
		markUnread(fc, grp)
		schedule(t, s, session.ChatRead{Chat: dm, LastMessageID: "D5", Timestamp: ts}, "")
		fc.emit(&events.MarkChatAsRead{JID: jid(grp), Timestamp: ts, Action: &waSyncAction.MarkChatAsReadAction{Read: proto.Bool(true)}})
		schedule(t, s, session.ChatRead{Chat: grp, LastMessageID: "G1", LastSender: member, Timestamp: ts}, "")
		time.Sleep(bwm.DefaultChatReadWindow)
		synctest.Wait()
		if _, _, patches := fc.recorded(); len(patches) != 0 {
			t.Errorf("%d patches for chats not marked unread, want 0", len(patches))
		}
	})
}
