package fakewa_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

const wait = 5 * time.Second

var (
	dmChat     = types.NewJID("15550000002", types.DefaultUserServer)
	groupChat  = types.NewJID("120363000000000001", types.GroupServer)
	sender     = types.JID{User: "15550000003", Device: 7, Server: types.DefaultUserServer}
	newsletter = types.NewJID("120363000000000002", types.NewsletterServer)
	readAt     = time.Unix(1700000000, 0)
)

// connect starts a server with opts and returns it with a logged-in client.
func connect(t *testing.T, opts ...fakewa.Option) (*fakewa.Server, *whatsmeow.Client) {
	t.Helper()
	srv := fakewa.Start(t, opts...)
	dev, _ := fakewa.NewDevice(t)
	return srv, srv.Connect(t, dev)
}

func receiptWithID(id string) func(waBinary.Node) bool {
	return func(n waBinary.Node) bool { return n.Tag == "receipt" && n.Attrs["id"] == id }
}

func TestConnect(t *testing.T) {
	srv, cli := connect(t)
	if !cli.IsConnected() {
		t.Error("IsConnected() = false after Connect")
	}
	if !cli.IsLoggedIn() {
		t.Error("IsLoggedIn() = false after Connect")
	}
	if got, want := cli.Store.ID.String(), "15550000001:1@s.whatsapp.net"; got != want {
		t.Errorf("Store.ID = %s, want %s", got, want)
	}
	for _, n := range srv.Nodes() {
		t.Logf("received at login: %s", fakewa.XML(n))
	}
}

func TestMarkRead(t *testing.T) {
	tests := []struct {
		name        string
		opts        []fakewa.Option
		setReceipts string // if set, passed to SetReadReceipts after connecting
		ids         []types.MessageID
		chat        types.JID
		sender      types.JID
		receiptType []types.ReceiptType
		want        string
	}{
		{
			name: "dm one id",
			ids:  []types.MessageID{"3EB0DM01"},
			chat: dmChat,
			want: `<receipt id="3EB0DM01" t="1700000000" to="15550000002@s.whatsapp.net" type="read"/>`,
		},
		{
			name:   "dm sender ignored",
			ids:    []types.MessageID{"3EB0DM02"},
			chat:   dmChat,
			sender: dmChat,
			want:   `<receipt id="3EB0DM02" t="1700000000" to="15550000002@s.whatsapp.net" type="read"/>`,
		},
		{
			name:   "group three ids",
			ids:    []types.MessageID{"3EB0G1", "3EB0G2", "3EB0G3"},
			chat:   groupChat,
			sender: sender,
			want: `<receipt id="3EB0G1" participant="15550000003@s.whatsapp.net" t="1700000000" to="120363000000000001@g.us" type="read">` +
				`<list><item id="3EB0G2"/><item id="3EB0G3"/></list></receipt>`,
		},
		{
			name:        "played",
			ids:         []types.MessageID{"3EB0P1"},
			chat:        dmChat,
			receiptType: []types.ReceiptType{types.ReceiptTypePlayed},
			want:        `<receipt id="3EB0P1" t="1700000000" to="15550000002@s.whatsapp.net" type="played"/>`,
		},
		{
			name: "read-self with readreceipts none option",
			opts: []fakewa.Option{fakewa.WithReadReceipts("none")},
			ids:  []types.MessageID{"3EB0S1"},
			chat: dmChat,
			want: `<receipt id="3EB0S1" t="1700000000" to="15550000002@s.whatsapp.net" type="read-self"/>`,
		},
		{
			name:        "read-self with readreceipts none set later",
			setReceipts: "none",
			ids:         []types.MessageID{"3EB0S2", "3EB0S3"},
			chat:        groupChat,
			sender:      sender,
			want: `<receipt id="3EB0S2" participant="15550000003@s.whatsapp.net" t="1700000000" to="120363000000000001@g.us" type="read-self">` +
				`<list><item id="3EB0S3"/></list></receipt>`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := connect(t, tc.opts...)
			if tc.setReceipts != "" {
				srv.SetReadReceipts(tc.setReceipts)
			}
			err := cli.MarkRead(context.Background(), tc.ids, readAt, tc.chat, tc.sender, tc.receiptType...)
			if err != nil {
				t.Fatalf("MarkRead: %v", err)
			}
			got := srv.WaitNode(t, wait, receiptWithID(tc.ids[0]))
			t.Logf("receipt: %s", fakewa.XML(got))
			if fakewa.XML(got) != tc.want {
				t.Errorf("receipt\n got %s\nwant %s", fakewa.XML(got), tc.want)
			}
			if _, ok := got.Attrs["participant"]; ok != (tc.chat.Server == types.GroupServer) {
				t.Errorf("participant attribute present = %v for chat %s", ok, tc.chat)
			}
			if len(tc.ids) == 1 && got.Content != nil {
				t.Errorf("content = %v, want none for a single id", got.Content)
			}
			if n := len(srv.Receipts()); n != 1 {
				t.Errorf("%d receipts recorded, want 1", n)
			}
		})
	}
}

func TestNewsletterMarkViewed(t *testing.T) {
	srv, cli := connect(t)
	done := make(chan error, 1)
	go func() {
		done <- cli.NewsletterMarkViewed(context.Background(), newsletter, []types.MessageServerID{101, 102})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("NewsletterMarkViewed: %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("NewsletterMarkViewed did not return within %v although the server acked", wait)
	}

	receipts := srv.Receipts()
	if len(receipts) != 1 {
		t.Fatalf("%d receipts recorded, want 1", len(receipts))
	}
	got := receipts[0]
	t.Logf("receipt: %s", fakewa.XML(got))
	id, _ := got.Attrs["id"].(string)
	if id == "" {
		t.Fatalf("receipt without id: %s", fakewa.XML(got))
	}
	want := `<receipt id="` + id + `" to="120363000000000002@newsletter" type="view">` +
		`<list><item server_id="101"/><item server_id="102"/></list></receipt>`
	if fakewa.XML(got) != want {
		t.Errorf("receipt\n got %s\nwant %s", fakewa.XML(got), want)
	}
}

func TestNewsletterMarkViewedWithoutAck(t *testing.T) {
	srv, cli := connect(t, fakewa.WithoutNewsletterAck())
	done := make(chan error, 1)
	go func() {
		done <- cli.NewsletterMarkViewed(context.Background(), newsletter, []types.MessageServerID{7})
	}()
	got := srv.WaitNode(t, wait, func(n waBinary.Node) bool { return n.Tag == "receipt" })
	t.Logf("receipt: %s", fakewa.XML(got))
	select {
	case err := <-done:
		t.Fatalf("NewsletterMarkViewed returned (%v) although the server did not answer", err)
	case <-time.After(300 * time.Millisecond):
	}

	// Only a dropped connection releases the waiter, and then the call
	// reports success.
	srv.DropConnections()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("NewsletterMarkViewed after the connection dropped: %v, want nil", err)
		}
	case <-time.After(wait):
		t.Fatalf("NewsletterMarkViewed still blocked %v after the connection dropped", wait)
	}
}

func TestDropConnections(t *testing.T) {
	srv, cli := connect(t)
	disconnected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Disconnected); ok {
			select {
			case disconnected <- struct{}{}:
			default:
			}
		}
	})
	srv.DropConnections()
	// Wait for the event rather than polling IsConnected: whatsmeow's
	// FrameSocket.IsConnected reads its conn field without the lock its Close
	// writes it under, which the race detector may report when the two meet.
	// Disconnected is emitted after the client has dropped the socket.
	select {
	case <-disconnected:
	case <-time.After(wait):
		t.Fatalf("no Disconnected event within %v of DropConnections", wait)
	}
	if cli.IsConnected() {
		t.Error("IsConnected() = true after the connection dropped")
	}
	if err := cli.MarkRead(context.Background(), []types.MessageID{"X"}, readAt, dmChat, types.EmptyJID); err == nil {
		t.Error("MarkRead succeeded while disconnected")
	}
}

// A second connection of a device replaces the first, as WhatsApp does:
// the older client gets <stream:error><conflict type="replaced"/>, which
// whatsmeow reports as events.StreamReplaced, and the server counts it.
func TestSecondConnectionReplacesTheFirst(t *testing.T) {
	srv := fakewa.Start(t)
	dev, container := fakewa.NewDevice(t)
	first := srv.NewClient(t, dev)
	replaced := make(chan struct{}, 1)
	first.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.StreamReplaced); ok {
			replaced <- struct{}{}
		}
	})
	if err := first.Connect(); err != nil {
		t.Fatal(err)
	}
	if !first.WaitForConnection(wait) {
		t.Fatal("the first client did not log in")
	}
	if n, most := srv.Replaced(), srv.MaxConcurrent(types.EmptyJID); n != 0 || most != 1 {
		t.Errorf("one client: replaced %d, at most %d at once; want 0 and 1", n, most)
	}
	again, err := container.GetDevice(context.Background(), *dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	second := srv.Connect(t, again)
	select {
	case <-replaced:
	case <-time.After(wait):
		t.Fatal("the first client got no StreamReplaced")
	}
	// The client does not close; the server does after ReplacedGrace.
	srv.WaitConnections(t, fakewa.ReplacedGrace+wait, 1)
	if first.IsLoggedIn() || !second.IsLoggedIn() {
		t.Errorf("logged in: first %v, second %v; want the second only", first.IsLoggedIn(), second.IsLoggedIn())
	}
	if n := srv.Replaced(); n != 1 {
		t.Errorf("replaced %d, want 1", n)
	}
	if most := srv.MaxConcurrent(*dev.ID); most != 2 {
		t.Errorf("MaxConcurrent(%s) = %d, want 2", dev.ID, most)
	}
	if got := srv.ConnectedDevices(); len(got) != 1 || got[0] != *dev.ID {
		t.Errorf("ConnectedDevices = %v, want [%s]", got, dev.ID)
	}
}

func TestIsOnWhatsApp(t *testing.T) {
	_, cli := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	got, err := cli.IsOnWhatsApp(ctx, []string{"+15550000002", "15550000003"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"15550000002@s.whatsapp.net", "15550000003@s.whatsapp.net"}
	if len(got) != len(want) {
		t.Fatalf("IsOnWhatsApp = %+v, want %d answers", got, len(want))
	}
	// whatsmeow asks for LID addressing: the answer's jid is the LID, its
	// pn_jid the number, as WhatsApp answers.
	for i, r := range got {
		if r.PhoneNumber.String() != want[i] || r.JID.Server != types.HiddenUserServer || !r.IsIn {
			t.Errorf("answer %d = %s (number %s) in=%v, want a LID for %s, in=true", i, r.JID, r.PhoneNumber, r.IsIn, want[i])
		}
	}
}

// GetGroupInfo gets the group as set, WhatsApp's 404 for a group the server
// does not know, its 500 while SetGroupInfoErrors is on, and, while
// HoldGroupInfo holds the answers, nothing until release.
func TestGroupInfo(t *testing.T) {
	srv, cli := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	srv.SetGroup(fakewa.Group{JID: groupChat, AddressingMode: "lid"})
	if info, err := cli.GetGroupInfo(ctx, groupChat); err != nil || info.AddressingMode != types.AddressingModeLID {
		t.Errorf("GetGroupInfo = %+v, %v; want addressing mode lid", info, err)
	}
	if _, err := cli.GetGroupInfo(ctx, types.NewJID("120363000000000009", types.GroupServer)); !errors.Is(err, whatsmeow.ErrGroupNotFound) {
		t.Errorf("unknown group: err = %v, want ErrGroupNotFound", err)
	}
	srv.SetGroupInfoErrors(true)
	var iqErr *whatsmeow.IQError
	if _, err := cli.GetGroupInfo(ctx, groupChat); !errors.As(err, &iqErr) || iqErr.Code != 500 {
		t.Errorf("with errors: err = %v, want an IQError 500", err)
	}
	srv.SetGroupInfoErrors(false)

	release := srv.HoldGroupInfo(t)
	before := len(srv.Nodes())
	done := make(chan error, 1)
	go func() {
		_, err := cli.GetGroupInfo(ctx, groupChat)
		done <- err
	}()
	seen := 0
	srv.WaitNode(t, wait, func(n waBinary.Node) bool {
		seen++
		return seen > before && n.Tag == "iq" && n.Attrs["xmlns"] == "w:g2"
	})
	select {
	case err := <-done:
		t.Fatalf("GetGroupInfo returned while held: %v", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("after release: %v", err)
	}
}

// WaitCounts returns once the receipts it waits for have been counted,
// WithCountOnly too, where WaitNode sees nothing.
func TestWaitCounts(t *testing.T) {
	srv, cli := connect(t, fakewa.WithCountOnly())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cli.MarkRead(ctx, []types.MessageID{"ID1", "ID2"}, readAt, dmChat, types.EmptyJID); err != nil {
		t.Fatal(err)
	}
	srv.WaitCounts(t, wait, func(c fakewa.Counts) bool { return c.ReceiptIDs == 2 })
	if got := srv.Counts(); got.Receipts != 1 {
		t.Errorf("Counts = %+v, want one receipt", got)
	}
}

// Certificate is what a client in another process trusts under the name
// HTTPClient's TLS configuration checks.
func TestCertificate(t *testing.T) {
	srv := fakewa.Start(t)
	name := srv.HTTPClient().Transport.(*http.Transport).TLSClientConfig.ServerName
	if err := srv.Certificate().VerifyHostname(name); err != nil {
		t.Error(err)
	}
}
