package whatsmeow_test

// Wire tests for an account whose read receipts are off (privacy
// readreceipts="none"), asserted on the exact receipt nodes: the types
// WhatsApp Web sends then, not the ones whatsmeow's MarkRead would.

import (
	"context"
	"errors"
	"reflect"
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

const status = "status@broadcast"

// With read receipts off, WhatsApp Web sends read in groups ("read receipts
// are always sent for group chats"), read-self in direct chats and played-self
// for a voice note played in a direct chat; a status update follows the
// direct chats (its author does not see it viewed); played in a group stays
// played. The Session reports each type as sent.
//
// Before: group read <receipt id="3EB0OFFG1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read-self"/>, reported read-self
// Before: direct played <receipt id="3EB0OFFV1" t="1767225600" to="15551234567@s.whatsapp.net" type="played"/>, reported played (the sender saw it played)
func TestWireReceiptsWithReadReceiptsOff(t *testing.T) {
	tests := []struct {
		name     string
		receipt  session.Receipt
		wantType session.ReceiptType
		want     string // the receipt node, verbatim
	}{
		{"group read stays read", rcpt(grp, member, session.ReceiptRead, "3EB0OFFG1"), session.ReceiptRead,
			`<receipt id="3EB0OFFG1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"/>`},
		{"group read, several ids", rcpt(grp, member, session.ReceiptRead, "3EB0OFFG1", "3EB0OFFG2", "3EB0OFFG3"), session.ReceiptRead,
			`<receipt id="3EB0OFFG1" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="read"><list><item id="3EB0OFFG2"/><item id="3EB0OFFG3"/></list></receipt>`},
		{"group played stays played", rcpt(grp, member, session.ReceiptPlayed, "3EB0OFFGV"), session.ReceiptPlayed,
			`<receipt id="3EB0OFFGV" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="played"/>`},
		{"direct read: read-self", rcpt(dm, "", session.ReceiptRead, "3EB0OFFD1"), session.ReceiptReadSelf,
			`<receipt id="3EB0OFFD1" t="1767225600" to="15551234567@s.whatsapp.net" type="read-self"/>`},
		{"direct voice note: played-self", rcpt(dm, "", session.ReceiptPlayed, "3EB0OFFV1"), session.ReceiptPlayedSelf,
			`<receipt id="3EB0OFFV1" t="1767225600" to="15551234567@s.whatsapp.net" type="played-self"/>`},
		{"lid chat voice notes: played-self", rcpt(dmLID, "", session.ReceiptPlayed, "3EB0OFFV2", "3EB0OFFV3"), session.ReceiptPlayedSelf,
			`<receipt id="3EB0OFFV2" t="1767225600" to="123456789012345@lid" type="played-self"><list><item id="3EB0OFFV3"/></list></receipt>`},
		{"status read: read-self", rcpt(status, member, session.ReceiptRead, "3EB0OFFS1"), session.ReceiptReadSelf,
			`<receipt id="3EB0OFFS1" participant="15557654321@s.whatsapp.net" t="1767225600" to="status@broadcast" type="read-self"/>`},
		{"status played: played-self", rcpt(status, member, session.ReceiptPlayed, "3EB0OFFS2"), session.ReceiptPlayedSelf,
			`<receipt id="3EB0OFFS2" participant="15557654321@s.whatsapp.net" t="1767225600" to="status@broadcast" type="played-self"/>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, fakewa.WithReadReceipts("none"))
			res, err := w.session.SendReceipt(context.Background(), tc.receipt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Type != tc.wantType {
				t.Errorf("reported type %q, want %q", res.Type, tc.wantType)
			}
			assertReceipts(t, w, tc.want)
		})
	}
}

// A group read with read receipts off is the very node MarkRead sends for
// the same receipt when they are on — attribute values of the same types
// (JIDs as JIDs), the same <list> — so WhatsApp cannot tell them apart.
func TestWireGroupReadWithReadReceiptsOffIsMarkReadsNode(t *testing.T) {
	receipt := rcpt(grp, member, session.ReceiptRead, "3EB0SAME1", "3EB0SAME2")
	nodes := make(map[string]waBinary.Node)
	for _, setting := range []string{"all", "none"} {
		w := newWire(t, fakewa.WithReadReceipts(setting))
		if _, err := w.session.SendReceipt(context.Background(), receipt); err != nil {
			t.Fatal(err)
		}
		got := readReceipts(w.sent(t))
		if len(got) != 1 {
			t.Fatalf("readreceipts=%s: receipts %v, want 1", setting, xmls(got))
		}
		nodes[setting] = got[0]
	}
	if !reflect.DeepEqual(nodes["none"], nodes["all"]) {
		t.Errorf("with read receipts off\n %#v\nMarkRead's\n %#v", nodes["none"], nodes["all"])
	}
	t.Logf("%s", fakewa.XML(nodes["none"]))
}

// While WhatsApp has not told the read-receipt setting, a voice note in a
// direct chat is not marked played (with read receipts off it must go out
// as played-self), as no read goes out; in a group played does not depend
// on the setting and goes out.
//
// Before: <receipt id="3EB0PLAY1" t="1767225600" to="15551234567@s.whatsapp.net" type="played"/>
func TestWirePrivacyUnknownSendsNoPlayedInDirectChats(t *testing.T) {
	w := newWire(t, fakewa.WithPrivacyErrors())
	_, err := w.session.SendReceipt(context.Background(), rcpt(dm, "", session.ReceiptPlayed, "3EB0PLAY1"))
	if !errors.Is(err, session.ErrNotConnected) {
		t.Errorf("direct chat: err = %v, want ErrNotConnected", err)
	}
	res, err := w.session.SendReceipt(context.Background(), rcpt(grp, member, session.ReceiptPlayed, "3EB0PLAY2"))
	if err != nil || res.Type != session.ReceiptPlayed {
		t.Errorf("group: %+v, %v", res, err)
	}
	assertReceipts(t, w, `<receipt id="3EB0PLAY2" participant="15557654321@s.whatsapp.net" t="1767225600" to="120363012345678901@g.us" type="played"/>`)
}
