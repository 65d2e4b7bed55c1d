package whatsmeow

import (
	"errors"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
)

// parseJIDSlow is parseJID as it was before its fast path: whatsmeow's
// parser, the device part dropped.
func parseJIDSlow(s string) (types.JID, error) {
	if !strings.Contains(s, "@") {
		return types.EmptyJID, errNotJID
	}
	j, err := types.ParseJID(s)
	if err != nil {
		return types.EmptyJID, err
	}
	return j.ToNonAD(), nil
}

var errNotJID = errors.New("not a JID")

// parseJID's fast path for user@server gives what whatsmeow's parser gives,
// and every other form still goes to it.
func FuzzParseJID(f *testing.F) {
	for _, s := range []string{
		"", "@", "15551234567@s.whatsapp.net", "120363012345678901@g.us", "123@lid", "1@newsletter",
		"status@broadcast", "15551234567.0:12@s.whatsapp.net", "15551234567:12@s.whatsapp.net", "a@b@c",
		"a.b.c@s.whatsapp.net", "a:b@x", "@s.whatsapp.net", "user@", "x.1@lid", "15551234567",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseJID(s)
		want, werr := parseJIDSlow(s)
		if (err == nil) != (werr == nil) || got != want {
			t.Errorf("parseJID(%q) = %+v, %v; whatsmeow's parser: %+v, %v", s, got, err, want, werr)
		}
	})
}
