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

// isJID says what comparing whatsmeow's String with the string says, for
// every form String has.
func TestIsJID(t *testing.T) {
	jids := []types.JID{
		{}, {User: "15551234567", Server: types.DefaultUserServer}, {User: "123", Server: types.HiddenUserServer},
		{User: "120363012345678901", Server: types.GroupServer}, {Server: types.GroupServer},
		{User: "status", Server: types.BroadcastServer}, {User: "15551234567", Device: 12, Server: types.DefaultUserServer},
		{User: "15551234567", RawAgent: 1, Device: 2, Server: types.DefaultUserServer}, {User: "a@b", Server: "c"},
		{User: "a", Server: "b@c"},
	}
	strs := []string{"", "@", "15551234567@s.whatsapp.net", "15551234567@lid", "15551234567@s.whatsapp.ne",
		"5551234567@s.whatsapp.net", "15551234567:12@s.whatsapp.net", "15551234567.1:2@s.whatsapp.net",
		"123@lid", "g.us", "@g.us", "120363012345678901@g.us", "status@broadcast", "a@b@c", "15551234567#s.whatsapp.net"}
	for _, j := range jids {
		for _, s := range append(strs, j.String()) {
			if got, want := isJID(j, s), j.String() == s; got != want {
				t.Errorf("isJID(%+v, %q) = %v, want %v", j, s, got, want)
			}
		}
	}
}
