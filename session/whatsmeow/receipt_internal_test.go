package whatsmeow

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/bluetick/bluetick/session"
)

// receiptClient is a client that is logged in, has its privacy settings
// cached and sends instantly: what a receipt costs a Session beside
// whatsmeow's work. The methods a receipt does not call are nil.
type receiptClient struct{ Client }

var receiptPrivacy = &types.PrivacySettings{ReadReceipts: types.PrivacySettingAll}

func (receiptClient) MarkRead(context.Context, []types.MessageID, time.Time, types.JID, types.JID, ...types.ReceiptType) error {
	return nil
}
func (receiptClient) IsConnected() bool                                  { return true }
func (receiptClient) IsLoggedIn() bool                                   { return true }
func (receiptClient) SendPresence(context.Context, types.Presence) error { return nil }
func (receiptClient) AddEventHandler(whatsmeow.EventHandler) uint32      { return 1 }
func (receiptClient) RemoveEventHandler(uint32) bool                     { return true }
func (receiptClient) TryFetchPrivacySettings(context.Context, bool) (*types.PrivacySettings, error) {
	return receiptPrivacy, nil
}

// spreadReceipts is the receipts of the end-to-end benchmark's spread
// workload, without HTTP: receipt n marks message n of the direct chat n
// mod 64. The ids repeat after 4,096.
func spreadReceipts() []session.Receipt {
	receipts := make([]session.Receipt, 4096)
	for i := range receipts {
		receipts[i] = session.Receipt{
			Chat:       fmt.Sprintf("1555200%04d@s.whatsapp.net", i%64),
			Type:       session.ReceiptRead,
			MessageIDs: []string{fmt.Sprintf("3EB0%016X", i)},
		}
	}
	return receipts
}

// sendUnknown does what the handler asks of s for r, whose message s never
// indexed: resolving it (the skip check), then sending r as is. It fails
// tb on any other outcome.
func sendUnknown(tb testing.TB, ctx context.Context, s session.Session, r session.Receipt) {
	resolver, ok := session.As[session.Resolver](s)
	if !ok {
		tb.Fatal("the session resolves no message")
	}
	if _, err := resolver.ResolveMessage(ctx, r.Chat, r.MessageIDs[0]); !errors.Is(err, session.ErrMessageNotFound) {
		tb.Fatalf("ResolveMessage: %v, want ErrMessageNotFound", err)
	}
	res, err := s.SendReceipt(ctx, r)
	if err != nil {
		tb.Fatal(err)
	}
	if res.Type != session.ReceiptRead || res.Chat != "" || res.Sender != "" {
		tb.Fatalf("SendReceipt: %+v", res)
	}
}

// BenchmarkSessionReceiptAlone is BenchmarkSessionReceipt without the wire:
// a Manager's session (its SQLite store, library defaults) over
// receiptClient resolves a message nobody indexed, then sends its read
// receipt in a direct chat. Its allocations are the Session's alone, so
// allocs/op and B/op are exact. Last measured: ~540 ns, 48 B, 2 allocs/op
// (the not-indexed error and the copy of the ids given to MarkRead).
func BenchmarkSessionReceiptAlone(b *testing.B) {
	ctx := context.Background()
	st := newSQLiteStore(b)
	st.SaveDevice(b, "15550000009")
	w, db := openMessageStore(b, st.DSN, Retention{})
	defer db.Close()
	defer w.close()
	o := managerDefaults()
	o.warmPrivacy = false // the client's settings are cached already
	_ = withStore(w, newIndex(defaultIndexCache), "1")(&o)
	dev := deviceWith(types.NewADJID("15550000009", 0, 1))
	dev.PushName = "Bench"
	s := newSession(receiptClient{}, dev, o)
	defer s.Close()
	receipts := spreadReceipts()
	send := func(r session.Receipt) { sendUnknown(b, ctx, s, r) }
	send(receipts[0]) // goes online, loads the store's ids
	if !s.index.stored.loaded() {
		b.Fatal("the store's ids are not loaded")
	}
	i := 0
	for b.Loop() {
		send(receipts[i%len(receipts)])
		i++
	}
}

// typeArg passes each type as itself, alone.
func TestTypeArg(t *testing.T) {
	for _, typ := range []types.ReceiptType{types.ReceiptTypeRead, types.ReceiptTypeReadSelf,
		types.ReceiptTypePlayed, types.ReceiptTypePlayedSelf, types.ReceiptTypeDelivered} {
		if got := typeArg(typ); len(got) != 1 || got[0] != typ || cap(got) != 1 {
			t.Errorf("typeArg(%q) = %q (cap %d), want [%q] (cap 1)", typ, got, cap(got), typ)
		}
	}
}
