package validate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/validate"
)

func TestParseMessageID(t *testing.T) {
	tests := []struct {
		name, in   string
		id         string
		serialized bool
		fromMe     bool
		chat, part string
	}{
		{name: "plain", in: "3EB0C767D26A1D98A4", id: "3EB0C767D26A1D98A4"},
		{name: "plain with _ and -", in: "message_123-x", id: "message_123-x"},
		{name: "plain starting like serialized", in: "true_3EB0", id: "true_3EB0"},
		{name: "128 chars", in: strings.Repeat("A", 128), id: strings.Repeat("A", 128)},
		{name: "serialized incoming", in: "false_15551234567@c.us_3EB0C767D26A1D98A4",
			id: "3EB0C767D26A1D98A4", serialized: true, chat: "15551234567@s.whatsapp.net"},
		{name: "serialized own", in: "true_15551234567@c.us_3EB0C767D26A1D98A4",
			id: "3EB0C767D26A1D98A4", serialized: true, fromMe: true, chat: "15551234567@s.whatsapp.net"},
		{name: "serialized group with participant", in: "false_120363012345678901@g.us_3EB0ABCD_15557654321@c.us",
			id: "3EB0ABCD", serialized: true, chat: "120363012345678901@g.us", part: "15557654321@s.whatsapp.net"},
		{name: "serialized group with lid participant", in: "false_120363012345678901@g.us_3EB0ABCD_123456789012345@lid",
			id: "3EB0ABCD", serialized: true, chat: "120363012345678901@g.us", part: "123456789012345@lid"},
		{name: "serialized id with underscore", in: "false_15551234567@c.us_AB_CD",
			id: "AB_CD", serialized: true, chat: "15551234567@s.whatsapp.net"},
		{name: "serialized lid chat", in: "false_123456789012345@lid_3EB0",
			id: "3EB0", serialized: true, chat: "123456789012345@lid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := validate.ParseMessageID(tc.in)
			if err != nil {
				t.Fatalf("ParseMessageID(%q): %v", tc.in, err)
			}
			if m.ID != tc.id || m.Serialized != tc.serialized || m.FromMe != tc.fromMe ||
				m.Chat.String() != tc.chat || m.Participant.String() != tc.part {
				t.Errorf("ParseMessageID(%q) = %+v", tc.in, m)
			}
		})
	}
}

func TestParseMessageIDRejects(t *testing.T) {
	tests := []struct{ name, in, reason string }{
		{"empty", "", "1 to 128"},
		{"129 chars", strings.Repeat("A", 129), "1 to 128"},
		{"space", "3EB0 C767", "may only contain"},
		{"dot", "3EB0.C767", "may only contain"},
		{"unicode", "3EB0é", "may only contain"},
		{"bad prefix", "maybe_15551234567@c.us_3EB0", "true_ or false_"},
		{"no id part", "false_15551234567@c.us", "must look like"},
		{"empty id part", "false_15551234567@c.us_", "1 to 128"},
		{"bad chat", "false_abc@c.us_3EB0", "chat"},
		{"broadcast chat", "false_12345@broadcast_3EB0", "chat"},
		{"group participant", "false_120363012345678901@g.us_3EB0_120363@g.us", "participant"},
		{"bad id in serialized", "false_15551234567@c.us_3E B0", "may only contain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := validate.ParseMessageID(tc.in)
			if err == nil {
				t.Fatalf("ParseMessageID(%q) = %+v, want an error", tc.in, m)
			}
			if !errors.Is(err, validate.ErrInvalidMessageID) {
				t.Errorf("error %v does not wrap ErrInvalidMessageID", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}
