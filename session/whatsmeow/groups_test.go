package whatsmeow_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

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
