package validate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/validate"
)

func TestNormalizeChat(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"phone with punctuation", "+1 (234) 567-890", "1234567890@s.whatsapp.net"},
		{"phone with dots", "44.20.7946.0958", "442079460958@s.whatsapp.net"},
		{"bare digits", "15551234567", "15551234567@s.whatsapp.net"},
		{"7 digits", "1234567", "1234567@s.whatsapp.net"},
		{"15 digits", "123456789012345", "123456789012345@s.whatsapp.net"},
		{"surrounding spaces", "  15551234567 ", "15551234567@s.whatsapp.net"},
		{"c.us", "15551234567@c.us", "15551234567@s.whatsapp.net"},
		{"c.us upper-case server", "15551234567@C.US", "15551234567@s.whatsapp.net"},
		{"s.whatsapp.net kept", "15551234567@s.whatsapp.net", "15551234567@s.whatsapp.net"},
		{"device suffix dropped", "123456789:12@s.whatsapp.net", "123456789@s.whatsapp.net"},
		{"device suffix on c.us", "123456789:3@c.us", "123456789@s.whatsapp.net"},
		{"group", "120363012345678901@g.us", "120363012345678901@g.us"},
		{"old group", "15551234567-1600000000@g.us", "15551234567-1600000000@g.us"},
		{"lid", "123456789012345@lid", "123456789012345@lid"},
		{"lid device dropped", "123456789012345:7@lid", "123456789012345@lid"},
		{"channel", "120363123456789012@newsletter", "120363123456789012@newsletter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validate.NormalizeChat(tc.in)
			if err != nil {
				t.Fatalf("NormalizeChat(%q): %v", tc.in, err)
			}
			if got.String() != tc.want {
				t.Errorf("NormalizeChat(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeChatRejects(t *testing.T) {
	tests := []struct {
		name, in, reason string
	}{
		{"empty", "", "empty"},
		{"spaces only", "   ", "empty"},
		{"two @", "a@b@c", "more than one @"},
		{"unknown server", "15551234567@example.com", "unknown server"},
		{"letters in user", "abc@s.whatsapp.net", "digits only"},
		{"letters in c.us user", "1555abc4567@c.us", "digits only"},
		{"broadcast list", "12345@broadcast", "not supported"},
		{"too short", "123456", "7 to 15 digits"},
		{"too long", "1234567890123456", "7 to 15 digits"},
		{"leading zero", "015551234567", "country code"},
		{"letters in phone", "1555CALLME", "character other than"},
		{"only punctuation", "+ ( ) -", "7 to 15 digits"},
		{"missing server", "15551234567@", "missing server"},
		{"missing user", "@s.whatsapp.net", "7 to 15 digits"},
		{"bad device", "15551234567:x@s.whatsapp.net", "device suffix"},
		{"bad group", "abc@g.us", "group id"},
		{"bad lid", "12ab@lid", "lid id"},
		{"bad channel", "news@newsletter", "channel id"},
		{"look-alike server", "123456789@LİD", "unknown server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validate.NormalizeChat(tc.in)
			if err == nil {
				t.Fatalf("NormalizeChat(%q) = %q, want an error", tc.in, got)
			}
			if !errors.Is(err, validate.ErrInvalidJID) {
				t.Errorf("error %v does not wrap ErrInvalidJID", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestNormalizeParticipant(t *testing.T) {
	ok := map[string]string{
		"+1 555 123 4567":              "15551234567@s.whatsapp.net",
		"15551234567@c.us":             "15551234567@s.whatsapp.net",
		"15551234567:4@s.whatsapp.net": "15551234567@s.whatsapp.net",
		"123456789012345:2@lid":        "123456789012345@lid",
	}
	for in, want := range ok {
		got, err := validate.NormalizeParticipant(in)
		if err != nil || got.String() != want {
			t.Errorf("NormalizeParticipant(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"120363012345678901@g.us", "120363@newsletter", "status@broadcast", "", "x@y"} {
		if got, err := validate.NormalizeParticipant(in); err == nil {
			t.Errorf("NormalizeParticipant(%q) = %q, want an error", in, got)
		}
	}
}

func TestJIDKinds(t *testing.T) {
	for in, want := range map[string][3]bool{ // user, group, channel
		"15551234567":                   {true, false, false},
		"123456789012345@lid":           {true, false, false},
		"120363012345678901@g.us":       {false, true, false},
		"120363123456789012@newsletter": {false, false, true},
	} {
		j, err := validate.NormalizeChat(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]bool{j.IsUser(), j.IsGroup(), j.IsChannel()}; got != want {
			t.Errorf("%s: user, group, channel = %v, want %v", in, got, want)
		}
	}
	if !(validate.JID{}).IsZero() || (validate.JID{}).String() != "" {
		t.Error("zero JID is not zero or not empty")
	}
}
