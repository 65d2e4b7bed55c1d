package validate_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/validate"
)

// Fuzz targets for the normalisation functions. Run one with, e.g.
//
//	go test -run '^$' -fuzz '^FuzzParseMessageID$' -fuzztime 60s ./validate/
//
// Without -fuzz, go test runs the seeds below (and testdata/fuzz) as
// ordinary tests.

// jidSeeds are addresses as clients write them, good and bad.
var jidSeeds = []string{
	// Phone numbers, as people write them.
	"15551234567", "+15551234567", "+1 (555) 123-4567", "+1 (234) 567-890", "1.555.123.4567",
	"+44 20 7946 0958", "0155512345", "123456", "1234567", "123456789012345", "1234567890123456",
	"99999999999999999999999999999999999999", "+", "()", " 15551234567 ", "\t+15551234567\n",
	// JIDs of every server.
	"15551234567@c.us", "15551234567@s.whatsapp.net", "15551234567@S.WhatsApp.Net", "15551234567@C.US",
	"123:12@s.whatsapp.net", "15551234567:12@s.whatsapp.net", "15551234567:@s.whatsapp.net",
	"15551234567:1:2@s.whatsapp.net", "15551234567:x@c.us",
	"120363012345678901@g.us", "15551234567-1609459200@g.us", "1-2-3@g.us", "-@g.us", "abc@g.us",
	"123456789012345@lid", "123456789012345:3@lid", "120363123456789012@newsletter",
	"status@broadcast", "12345@broadcast", "15551234567@", "@s.whatsapp.net", "@", "@@",
	"a@b@c", "15551234567@c.us@c.us", "15551234567@example.com", "15551234567@g.us:1",
	// Unicode and oddities.
	"", " ", "١٢٣٤٥٦٧٨", "１５５５１２３４５６７", "15551234567@lİd", "15551234567@s.whatsapp.net\u200b",
	"\xff\xfe", "15551234567\x00", strings.Repeat("9", 60) + "@g.us", strings.Repeat("1", 26) + "@lid",
}

// msgIDSeeds are message ids, plain and serialized, good and bad.
var msgIDSeeds = []string{
	"3EB0C767D26A1D98A4", "message_123", "message_123-x", "true_3EB0", "ABC", "a", "",
	strings.Repeat("A", 128), strings.Repeat("A", 129), "3EB0 C767", "3EB0.C767", "3EB0/..", "ünï",
	"false_15551234567@c.us_3EB0C767D26A1D98A4", "true_15551234567@c.us_3EB0C767D26A1D98A4",
	"false_120363012345678901@g.us_3EB0ABCD_15557654321@c.us",
	"false_120363012345678901@g.us_3EB0ABCD_123456789012345@lid",
	"false_120363012345678901@g.us_3EB0ABCD_120363012345678901@g.us",
	"false_15551234567@c.us_AB_CD", "false_15551234567@c.us_AB_CD_15557654321@c.us",
	"false_123456789012345@lid_3EB0", "false_120363123456789012@newsletter_123",
	"false_status@broadcast_3EB0", "maybe_15551234567@c.us_3EB0", "false_15551234567@c.us",
	"false_15551234567@c.us_", "false_15551234567@c.us__", "false__3EB0", "false_@_3EB0", "a@b@c",
	"false_123:12@s.whatsapp.net_3EB0", "false_ 15551234567@c.us _3EB0", "false_15551234567@c.us_3EB0_x@y",
	"false_15551234567@c.us_3EB0_@", "_@_", "true_@", "false_15551234567@c.us_" + strings.Repeat("B", 129),
}

var (
	plainID    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	phoneUser  = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)
	digitsUser = regexp.MustCompile(`^[0-9]{1,25}$`)
	groupUser  = regexp.MustCompile(`^[0-9]+(-[0-9]+)?$`)
)

// checkNormal fails t unless j is a JID NormalizeChat could have produced:
// a known server, a user part of the right shape, and a fixed point of
// NormalizeChat.
func checkNormal(t *testing.T, in string, j validate.JID) {
	t.Helper()
	var ok bool
	switch j.Server {
	case validate.ServerUser:
		ok = phoneUser.MatchString(j.User)
	case validate.ServerLID, validate.ServerChannel:
		ok = digitsUser.MatchString(j.User)
	case validate.ServerGroup:
		ok = groupUser.MatchString(j.User) && len(j.User) <= 50
	case validate.ServerBroadcast:
		ok = j.IsStatus()
	}
	if !ok {
		t.Fatalf("%q → %#v: not a normal JID", in, j)
	}
	if j.IsZero() || j.String() != j.User+"@"+j.Server {
		t.Fatalf("%q → %#v: String() = %q", in, j, j.String())
	}
	again, err := validate.NormalizeChat(j.String())
	if err != nil {
		t.Fatalf("%q → %q, which NormalizeChat refuses: %v", in, j, err)
	}
	if again != j {
		t.Fatalf("%q → %q → %q: not a fixed point", in, j, again)
	}
}

func checkJIDError(t *testing.T, fn, in string, j validate.JID, err error) {
	t.Helper()
	if !errors.Is(err, validate.ErrInvalidJID) {
		t.Fatalf("%s(%q): error %v does not wrap ErrInvalidJID", fn, in, err)
	}
	if !j.IsZero() || j != (validate.JID{}) {
		t.Fatalf("%s(%q): error %v with a non-zero JID %#v", fn, in, err, j)
	}
	if msg := validate.Field("f", "r", err).Message; msg == "" || strings.HasPrefix(msg, validate.ErrInvalidJID.Error()) {
		t.Fatalf("%s(%q): error %v gives the field message %q", fn, in, err, msg)
	}
}

func FuzzNormalizeChat(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := validate.NormalizeChat(s)
		if err != nil {
			checkJIDError(t, "NormalizeChat", s, j, err)
			return
		}
		checkNormal(t, s, j)
		// Surrounding white space never matters.
		if again, err := validate.NormalizeChat(" \t" + s + "\n "); err != nil || again != j {
			t.Fatalf("NormalizeChat(%q) = %q but with spaces around = %q, %v", s, j, again, err)
		}
		// A person is a participant too, the same one.
		p, perr := validate.NormalizeParticipant(s)
		switch {
		case j.IsUser() && (perr != nil || p != j):
			t.Fatalf("NormalizeChat(%q) = %q (a person) but NormalizeParticipant = %q, %v", s, j, p, perr)
		case !j.IsUser() && perr == nil:
			t.Fatalf("NormalizeChat(%q) = %q (not a person) but NormalizeParticipant accepts it as %q", s, j, p)
		}
	})
}

func FuzzNormalizeParticipant(f *testing.F) {
	for _, s := range jidSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := validate.NormalizeParticipant(s)
		if err != nil {
			checkJIDError(t, "NormalizeParticipant", s, j, err)
			return
		}
		if !j.IsUser() || j.IsGroup() || j.IsChannel() {
			t.Fatalf("NormalizeParticipant(%q) = %#v: not a person", s, j)
		}
		checkNormal(t, s, j)
		again, err := validate.NormalizeParticipant(j.String())
		if err != nil || again != j {
			t.Fatalf("NormalizeParticipant(%q) = %q, and of that %q, %v: not idempotent", s, j, again, err)
		}
		// Whatever is a participant is a chat, the same one.
		if c, err := validate.NormalizeChat(s); err != nil || c != j {
			t.Fatalf("NormalizeParticipant(%q) = %q but NormalizeChat = %q, %v", s, j, c, err)
		}
	})
}

func FuzzParseMessageID(f *testing.F) {
	for _, s := range msgIDSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := validate.ParseMessageID(s)
		if err != nil {
			if !errors.Is(err, validate.ErrInvalidMessageID) {
				t.Fatalf("ParseMessageID(%q): error %v does not wrap ErrInvalidMessageID", s, err)
			}
			if m != (validate.MessageID{}) {
				t.Fatalf("ParseMessageID(%q): error %v with a non-zero result %#v", s, err, m)
			}
			return
		}
		if !plainID.MatchString(m.ID) {
			t.Fatalf("ParseMessageID(%q).ID = %q: not 1-128 of A-Z a-z 0-9 _ -", s, m.ID)
		}
		// The bare id parses as itself.
		if plain, err := validate.ParseMessageID(m.ID); err != nil || plain != (validate.MessageID{ID: m.ID}) {
			t.Fatalf("ParseMessageID(%q).ID = %q, which parses as %#v, %v", s, m.ID, plain, err)
		}
		if !m.Serialized {
			if m != (validate.MessageID{ID: s}) {
				t.Fatalf("ParseMessageID(%q) = %#v: a plain id must come back as it is, alone", s, m)
			}
			return
		}
		checkNormal(t, s, m.Chat)
		if !m.Participant.IsZero() {
			if !m.Participant.IsUser() {
				t.Fatalf("ParseMessageID(%q).Participant = %q: not a person", s, m.Participant)
			}
			checkNormal(t, s, m.Participant)
		}
		// The canonical serialized form parses to the same id.
		canon := "false_"
		if m.FromMe {
			canon = "true_"
		}
		canon += m.Chat.String() + "_" + m.ID
		if !m.Participant.IsZero() {
			canon += "_" + m.Participant.String()
		}
		if again, err := validate.ParseMessageID(canon); err != nil || again != m {
			t.Fatalf("ParseMessageID(%q) = %#v; its canonical form %q parses as %#v, %v", s, m, canon, again, err)
		}
	})
}
