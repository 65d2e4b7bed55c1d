package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bluetick/bluetick/session"
)

func TestFence(t *testing.T) {
	ctx := context.Background()
	if err := session.Fence(ctx); err != nil {
		t.Fatalf("no fence: %v", err)
	}
	outer, inner := errors.New("outer"), errors.New("inner")
	var order []string
	check := func(name string, err error) func() error {
		return func() error { order = append(order, name); return err }
	}
	ctx = session.WithFence(ctx, check("outer", nil))
	if err := session.Fence(ctx); err != nil {
		t.Fatalf("a passing fence: %v", err)
	}
	nested := session.WithFence(ctx, check("inner", inner))
	if err := session.Fence(nested); !errors.Is(err, inner) {
		t.Fatalf("nested: %v, want the inner fence's error", err)
	}
	failing := session.WithFence(session.WithFence(context.Background(), check("outer", outer)), check("inner", nil))
	if err := session.Fence(failing); !errors.Is(err, outer) {
		t.Fatalf("an outer fence failing: %v", err)
	}
	_ = order
}
