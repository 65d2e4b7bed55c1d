package whatsmeow_test

import (
	"cmp"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
	bwm "github.com/bluetick/bluetick/session/whatsmeow"
)

// A group none of whose messages is indexed: the Session asks its
// addressing mode once, trusts the answer for GroupModeTTL, then asks
// again. A group joined (events.JoinedGroup) tells its mode without asking.
func TestGroupModeIsRememberedForItsTTL(t *testing.T) {
	const joined = "120363077777777777@g.us"
	fc := newFakeClient()
	fc.groups = map[types.JID]types.AddressingMode{jid(grp): types.AddressingModeLID}
	dev := newDevice(t, true)
	ctx := context.Background()
	if err := dev.LIDs.PutLIDMapping(ctx, jid(memberLID), jid(member)); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, fc, dev)
		defer s.Close()
		send := func(chat string, wantQueries int) {
			t.Helper()
			res, err := s.SendReceipt(ctx, rcpt(chat, member, session.ReceiptRead, "G1"))
			if err != nil {
				t.Fatal(err)
			}
			if res.Sender != memberLID {
				t.Errorf("sender %q, want %q", res.Sender, memberLID)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if fc.groupN != wantQueries {
				t.Errorf("%d group-info queries, want %d", fc.groupN, wantQueries)
			}
		}
		send(grp, 1)
		time.Sleep(bwm.GroupModeTTL - time.Second)
		send(grp, 1)
		time.Sleep(time.Second)
		send(grp, 2)

		fc.emit(&events.JoinedGroup{GroupInfo: types.GroupInfo{JID: jid(joined), AddressingMode: types.AddressingModeLID}})
		send(joined, 2)
	})
}

// GetGroupInfo fails (here as when not connected): the group is taken as
// addressed by phone number, and the failure is remembered for
// GroupModeFailureTTL without asking again; then the Session asks again. A
// group-change event (events.GroupInfo) forgets the failure sooner.
func TestGroupModeFailureIsRememberedForAWhile(t *testing.T) {
	fc := newFakeClient()
	fc.groups = map[types.JID]types.AddressingMode{jid(grp): types.AddressingModeLID}
	fc.groupErr = whatsmeow.ErrNotConnected
	dev := newDevice(t, true)
	ctx := context.Background()
	if err := dev.LIDs.PutLIDMapping(ctx, jid(memberLID), jid(member)); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		s := mustNew(t, fc, dev)
		defer s.Close()
		send := func(wantSender string, wantQueries int) {
			t.Helper()
			res, err := s.SendReceipt(ctx, rcpt(grp, member, session.ReceiptRead, "G1"))
			if err != nil {
				t.Fatal(err)
			}
			if sender := cmp.Or(res.Sender, member); sender != wantSender {
				t.Errorf("sender %q, want %q", sender, wantSender)
			}
			fc.mu.Lock()
			defer fc.mu.Unlock()
			if fc.groupN != wantQueries {
				t.Errorf("%d group-info queries, want %d", fc.groupN, wantQueries)
			}
		}
		send(member, 1)
		time.Sleep(bwm.GroupModeFailureTTL - time.Second)
		send(member, 1)
		time.Sleep(time.Second)
		send(member, 2)

		fc.emit(&events.GroupInfo{JID: jid(grp)})
		fc.set(func(f *fakeClient) { f.groupErr = nil })
		send(memberLID, 3)
		send(memberLID, 3)
	})
}

// A request asking a group's mode ends (its context) before WhatsApp
// answers: that tells nothing about the group, so nothing is remembered,
// and a request that was waiting for the same answer asks in turn.
func TestGroupModeAskerGivingUpHandsOver(t *testing.T) {
	fc := newFakeClient()
	fc.groups = map[types.JID]types.AddressingMode{jid(grp): types.AddressingModeLID}
	dev := newDevice(t, true)
	ctx := context.Background()
	if err := dev.LIDs.PutLIDMapping(ctx, jid(memberLID), jid(member)); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{}) // in the bubble: waiting for it is durable
		fc.set(func(f *fakeClient) { f.groupBlock = block })
		s := mustNew(t, fc, dev)
		defer s.Close()
		queries := func() int { fc.mu.Lock(); defer fc.mu.Unlock(); return fc.groupN }
		first, cancel := context.WithCancel(ctx)
		firstDone := make(chan struct{})
		go func() {
			defer close(firstDone)
			_, _ = s.SendReceipt(first, rcpt(grp, member, session.ReceiptRead, "G1"))
		}()
		synctest.Wait() // the first request waits for WhatsApp
		second := make(chan session.Result, 1)
		go func() {
			res, err := s.SendReceipt(ctx, rcpt(grp, member, session.ReceiptRead, "G2"))
			if err != nil {
				t.Error(err)
			}
			second <- res
		}()
		synctest.Wait() // the second waits for the first's answer
		if n := queries(); n != 1 {
			t.Fatalf("%d group-info queries while one is in flight, want 1", n)
		}
		cancel()
		<-firstDone
		synctest.Wait() // the second asks now
		if n := queries(); n != 2 {
			t.Fatalf("%d group-info queries after the first request gave up, want 2", n)
		}
		close(block)
		if res := <-second; res.Sender != memberLID {
			t.Errorf("second request's sender %q, want %q", res.Sender, memberLID)
		}
	})
}
