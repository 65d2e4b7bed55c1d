package fakewa

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver

	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
)

// The identity of every device NewDevice makes.
var (
	deviceJID = types.JID{User: "15550000001", Device: 1, Server: types.DefaultUserServer}
	deviceLID = types.JID{User: "100000000000001", Device: 1, Server: types.HiddenUserServer}
)

const devicePushName = "fakewa"

// dbCounter makes the in-memory database names unique within the process.
var dbCounter atomic.Uint64

// NewDevice returns a device that looks paired, saved in a whatsmeow sqlstore
// on a fresh in-memory SQLite database (modernc.org/sqlite, driver "sqlite").
// Its ID is 15550000001:1@s.whatsapp.net, its LID 100000000000001:1@lid, its
// push name "fakewa"; it has an account identity and a batch of prekeys marked
// uploaded. The account identity is random bytes: enough to log in to the
// fake, not to encrypt messages. t's cleanup closes the store.
func NewDevice(t testing.TB) (*store.Device, *sqlstore.Container) {
	t.Helper()
	ctx := context.Background()
	dsn := fmt.Sprintf("file:fakewa%d?mode=memory&cache=shared&_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)", dbCounter.Add(1))
	container, err := sqlstore.New(ctx, "sqlite", dsn, newTestLog(t).logger("Store"))
	if err != nil {
		t.Fatalf("fakewa: open store: %v", err)
	}
	t.Cleanup(func() { _ = container.Close() })
	return PairDevice(t, container), container
}

// PairDevice saves in container a device that looks paired, as NewDevice
// describes, and returns it. Use it to put a device the fake can log in
// into a store opened elsewhere (e.g. a Manager's SQLite file).
func PairDevice(t testing.TB, container *sqlstore.Container) *store.Device {
	t.Helper()
	return PairDeviceAs(t, container, deviceJID.User, deviceLID.User)
}

// PairDeviceAs is PairDevice for the account of phone number user (digits)
// and LID lid (digits), device 1: a store may hold many such devices, one
// per account.
func PairDeviceAs(t testing.TB, container *sqlstore.Container, user, lid string) *store.Device {
	t.Helper()
	ctx := context.Background()
	dev := container.NewDevice()
	id := types.JID{User: user, Device: 1, Server: types.DefaultUserServer}
	dev.ID = &id
	dev.LID = types.JID{User: lid, Device: 1, Server: types.HiddenUserServer}
	dev.PushName = devicePushName
	dev.Platform = "android"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             random.Bytes(32),
		AccountSignatureKey: random.Bytes(32),
		AccountSignature:    random.Bytes(64),
		DeviceSignature:     random.Bytes(64),
	}
	if err := container.PutDevice(ctx, dev); err != nil {
		t.Fatalf("fakewa: save device: %v", err)
	}
	// A paired device uploaded its prekeys while pairing; without them
	// whatsmeow would generate and upload 812 at every first login.
	preKeys, err := dev.PreKeys.GetOrGenPreKeys(ctx, whatsmeow.WantedPreKeyCount)
	if err != nil {
		t.Fatalf("fakewa: generate prekeys: %v", err)
	}
	if err := dev.PreKeys.MarkPreKeysAsUploaded(ctx, preKeys[len(preKeys)-1].KeyID); err != nil {
		t.Fatalf("fakewa: mark prekeys uploaded: %v", err)
	}
	return dev
}
