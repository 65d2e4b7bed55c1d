package whatsmeow

import (
	"context"
	"errors"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/bluetick/bluetick/session"
)

// Pairing stores the name with the device; WhatsApp logging the device out
// takes the session out of the registry.
func TestManagerPairSuccessAndLogout(t *testing.T) {
	ForEachStore(t, func(t *testing.T, st TestStore) {
		ctx := context.Background()
		m, err := Open(ctx, st.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()

		// What PairQR sets up, without dialling WhatsApp.
		dev := m.container.NewDevice()
		ms, err := m.add("support", dev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.add("support", m.container.NewDevice()); !errors.Is(err, ErrSessionExists) {
			t.Errorf("second add: %v, want ErrSessionExists", err)
		}
		// whatsmeow saves the paired device, then emits PairSuccess.
		id := types.NewADJID("15550000009", 0, 2)
		dev.ID = &id
		dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
		if err := dev.Save(ctx); err != nil {
			t.Fatal(err)
		}
		m.handleEvent(ms, &events.PairSuccess{ID: id})
		names, err := m.storedNames(ctx)
		if err != nil || names[id.String()] != "support" {
			t.Errorf("stored names = %v, %v", names, err)
		}
		// The device's name is one row: saving another name replaces it.
		if err := m.saveName(ctx, "help", id); err != nil {
			t.Fatal(err)
		}
		if names, err := m.storedNames(ctx); err != nil || len(names) != 1 || names[id.String()] != "help" {
			t.Errorf("stored names after saving another = %v, %v", names, err)
		}

		m.handleEvent(ms, &events.LoggedOut{Reason: events.ConnectFailureLoggedOut})
		if _, err := m.Lookup(ctx, "support"); !errors.Is(err, session.ErrSessionNotFound) {
			t.Errorf("Lookup after logout = %v", err)
		}
	})
}
