package cluster

import (
	"strconv"
	"testing"
	"time"
)

// A nonce is refused again for at least 2 × maxSkew (as long as a request
// carrying it could pass the time check), forgotten after, and the memory
// of nonces is bounded: past maxNonces in a period, requests are refused.
func TestNonces(t *testing.T) {
	var s nonces
	t0 := time.Unix(1_000_000, 0)
	for _, step := range []struct {
		at   time.Duration
		ok   bool
		what string
	}{
		{0, true, "first"},
		{time.Second, false, "again at once"},
		{2*maxSkew + time.Second, false, "again after a rotation"},
		{4*maxSkew + 2*time.Second, true, "after two rotations"},
	} {
		if err := s.add("n1", t0.Add(step.at)); (err == nil) != step.ok {
			t.Errorf("%s: %v, want ok %v", step.what, err, step.ok)
		}
	}
	if err := s.add("", t0); err == nil {
		t.Error("an empty nonce was accepted")
	}
	var full nonces
	for i := range maxNonces {
		if err := full.add(strconv.Itoa(i), t0); err != nil {
			t.Fatalf("nonce %d: %v", i, err)
		}
	}
	if err := full.add("one more", t0); err == nil {
		t.Error("a nonce past maxNonces was accepted")
	}
	if err := full.add("next period", t0.Add(2*maxSkew)); err != nil {
		t.Errorf("in the next period: %v", err)
	}
}
