package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bluetick/bluetick/session"
)

func TestSingle(t *testing.T) {
	ctx := context.Background()
	one := session.SessionFunc(func(context.Context, session.Receipt) (session.Result, error) {
		return session.Result{Type: session.ReceiptRead}, nil
	})
	reg := session.Single(one)
	if reg.Name() != "default" {
		t.Errorf("Name() = %q, want default", reg.Name())
	}
	for _, name := range []string{"", "default", "sales", "no such/name!"} {
		s, err := reg.Lookup(ctx, name)
		if err != nil || s == nil {
			t.Fatalf("Lookup(%q) = %v, %v; want the one session", name, s, err)
		}
		if res, err := s.SendReceipt(ctx, session.Receipt{}); err != nil || res.Type != session.ReceiptRead {
			t.Errorf("Lookup(%q) returned another session: %+v, %v", name, res, err)
		}
	}
	if names, err := reg.ListSessions(ctx); err != nil || !slices.Equal(names, []string{"default"}) {
		t.Errorf("ListSessions() = %q, %v; want [default]", names, err)
	}

	empty := session.Single(nil)
	if s, err := empty.Lookup(ctx, "default"); s != nil || !errors.Is(err, session.ErrSessionNotFound) {
		t.Errorf("Single(nil).Lookup = %v, %v; want ErrSessionNotFound", s, err)
	}
	if names, err := empty.ListSessions(ctx); err != nil || names == nil || len(names) != 0 {
		t.Errorf("Single(nil).ListSessions() = %#v, %v; want an empty list", names, err)
	}
}
