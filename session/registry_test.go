package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bluetick/bluetick/session"
)

func TestMemoryRegistry(t *testing.T) {
	var reg session.MemoryRegistry // the zero value is ready
	ctx := context.Background()
	if _, err := reg.Lookup(ctx, "a"); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("empty Lookup = %v", err)
	}
	called := ""
	reg.Set("a", session.SessionFunc(func(_ context.Context, r session.Receipt) (session.Result, error) {
		called = r.Chat
		return session.Result{Type: r.Type}, nil
	}))
	s, err := reg.Lookup(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.SendReceipt(ctx, session.Receipt{Chat: "c", Type: session.ReceiptRead}); err != nil || res.Type != session.ReceiptRead || called != "c" {
		t.Errorf("SendReceipt = %+v, %v; called %q", res, err, called)
	}
	reg.Set("b", s)
	if got := reg.Names(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Names = %v", got)
	}
	reg.Remove("a")
	reg.Remove("zzz")
	if _, err := reg.Lookup(ctx, "a"); !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Lookup after Remove = %v", err)
	}
	var viaFunc session.Registry = session.RegistryFunc(reg.Lookup)
	if _, err := viaFunc.Lookup(ctx, "b"); err != nil {
		t.Errorf("RegistryFunc Lookup = %v", err)
	}
}

// Registries list their sessions (session.Lister), and a
// Decorated one lists what it wraps, or says it cannot.
func TestLister(t *testing.T) {
	ctx := context.Background()
	reg := session.NewMemoryRegistry()
	reg.Set("b", session.SessionFunc(nil))
	reg.Set("a", session.SessionFunc(nil))
	d := session.Decorate(reg, session.DecorateOptions{})
	defer d.Close(ctx)
	for _, l := range []session.Lister{reg, d} {
		if got, err := l.ListSessions(ctx); err != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
			t.Errorf("%T.ListSessions = %v, %v", l, got, err)
		}
	}
	plain := session.Decorate(session.RegistryFunc(reg.Lookup), session.DecorateOptions{})
	defer plain.Close(ctx)
	if _, err := plain.ListSessions(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Decorated over a registry that cannot list: %v", err)
	}
}
