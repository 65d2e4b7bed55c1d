package validate

import (
	"errors"
	"fmt"
	"strings"
)

// WhatsApp servers (the part of a JID after the @).
const (
	// ServerUser is the server of phone-number accounts.
	ServerUser = "s.whatsapp.net"
	// ServerLegacyUser is the web client's spelling of ServerUser; it is
	// rewritten to ServerUser.
	ServerLegacyUser = "c.us"
	// ServerGroup is the server of group chats.
	ServerGroup = "g.us"
	// ServerLID is the server of hidden-number ("linked id") accounts.
	ServerLID = "lid"
	// ServerChannel is the server of channels (newsletters).
	ServerChannel = "newsletter"
	// ServerBroadcast is the server of status updates (StatusBroadcast,
	// accepted as a chat) and broadcast lists (not accepted).
	ServerBroadcast = "broadcast"
	// StatusBroadcast is the user part of the status updates' chat,
	// status@broadcast: a receipt there names the status's author.
	StatusBroadcast = "status"
)

// Phone-number bounds (E.164 allows at most 15 digits).
const (
	minPhoneDigits = 7
	maxPhoneDigits = 15
	maxIDDigits    = 25 // lid, newsletter and group user parts
)

// JID is a normalised WhatsApp address: User@Server, with no device suffix.
// The zero JID is empty.
type JID struct {
	User   string
	Server string
}

// String returns the JID as "user@server", or "" for the zero JID.
func (j JID) String() string {
	if j.Server == "" {
		return ""
	}
	return j.User + "@" + j.Server
}

// IsZero reports whether j is the zero JID.
func (j JID) IsZero() bool { return j.Server == "" }

// IsGroup reports whether j is a group chat.
func (j JID) IsGroup() bool { return j.Server == ServerGroup }

// IsStatus reports whether j is status@broadcast, the chat of status updates
// (stories); like a group's, its receipts name the message's sender.
func (j JID) IsStatus() bool { return j.Server == ServerBroadcast && j.User == StatusBroadcast }

// IsChannel reports whether j is a channel (newsletter).
func (j JID) IsChannel() bool { return j.Server == ServerChannel }

// IsUser reports whether j is a person: a phone number or a LID.
func (j JID) IsUser() bool { return j.Server == ServerUser || j.Server == ServerLID }

// ErrInvalidJID is wrapped by every error NormalizeChat and
// NormalizeParticipant return.
var ErrInvalidJID = errors.New("invalid jid")

func jidError(format string, args ...any) error {
	return &reasonError{kind: ErrInvalidJID, reason: fmt.Sprintf(format, args...)}
}

// reasonError is a sentinel plus the reason a person can act on; the reason
// alone goes into a FieldError's message.
type reasonError struct {
	kind   error
	reason string
}

func (e *reasonError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.kind }

// reason returns the human part of an error made by this package.
func reason(err error) string {
	if re, ok := err.(*reasonError); ok {
		return re.reason
	}
	return err.Error()
}

// NormalizeChat turns a chat address into a JID:
//   - a phone number in international format, with or without "+", spaces,
//     "-", ".", "(" and ")": 7–15 digits, no leading 0 → digits@s.whatsapp.net;
//   - digits@c.us → digits@s.whatsapp.net; digits@s.whatsapp.net is kept and
//     a device suffix ("123:12@s.whatsapp.net") is dropped;
//   - id@g.us (a group), digits@lid (a hidden-number account, device suffix
//     dropped), digits@newsletter (a channel) and status@broadcast (status
//     updates) are kept.
//
// Anything else — an empty string, several @, an unknown server, letters in
// a user part, a broadcast list — is an error wrapping ErrInvalidJID.
func NormalizeChat(s string) (JID, error) {
	return normalize(s, true)
}

// NormalizeParticipant turns the address of a person (a group message's
// sender) into a JID. It accepts what NormalizeChat accepts for people: a
// phone number, @c.us, @s.whatsapp.net and @lid, with device suffixes
// dropped; a group, channel or broadcast address is an error.
func NormalizeParticipant(s string) (JID, error) {
	return normalize(s, false)
}

func normalize(s string, chat bool) (JID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return JID{}, jidError("empty")
	}
	user, server, hasAt := strings.Cut(s, "@")
	if !hasAt {
		digits, err := phoneDigits(s)
		if err != nil {
			return JID{}, err
		}
		return JID{User: digits, Server: ServerUser}, nil
	}
	if strings.Contains(server, "@") {
		return JID{}, jidError("more than one @ in %q", s)
	}
	server = asciiLower(server)
	switch server {
	case ServerUser, ServerLegacyUser:
		u, err := dropDevice(user)
		if err != nil {
			return JID{}, err
		}
		if err := checkPhone(u); err != nil {
			return JID{}, err
		}
		return JID{User: u, Server: ServerUser}, nil
	case ServerLID:
		u, err := dropDevice(user)
		if err != nil {
			return JID{}, err
		}
		if err := checkDigits("lid", u); err != nil {
			return JID{}, err
		}
		return JID{User: u, Server: ServerLID}, nil
	case ServerGroup, ServerChannel:
		if !chat {
			return JID{}, jidError("a participant must be a person (@s.whatsapp.net, @c.us or @lid), not @%s", server)
		}
		if server == ServerGroup {
			if err := checkGroup(user); err != nil {
				return JID{}, err
			}
		} else if err := checkDigits("channel", user); err != nil {
			return JID{}, err
		}
		return JID{User: user, Server: server}, nil
	case ServerBroadcast:
		if chat && user == StatusBroadcast {
			return JID{User: user, Server: server}, nil
		}
		if !chat {
			return JID{}, jidError("a participant must be a person (@s.whatsapp.net, @c.us or @lid), not @%s", server)
		}
		return JID{}, jidError("broadcast lists (@broadcast) are not supported; status@broadcast is")
	case "":
		return JID{}, jidError("missing server after @ in %q", s)
	default:
		return JID{}, jidError("unknown server %q (want s.whatsapp.net, c.us, g.us, lid or newsletter)", server)
	}
}

// asciiLower lowers A–Z only: a server name is ASCII, and Unicode case
// folding must not turn a look-alike ("LİD") into one.
func asciiLower(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// phoneDigits strips the characters people write phone numbers with and
// checks what is left.
func phoneDigits(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", jidError("phone number %q has a character other than digits, +, spaces, -, ., ( and )", s)
		}
	}
	digits := b.String()
	if err := checkPhone(digits); err != nil {
		return "", err
	}
	return digits, nil
}

func checkPhone(digits string) error {
	if digits != "" && !allDigits(digits) {
		return jidError("phone number %q must be digits only", digits)
	}
	if n := len(digits); n < minPhoneDigits || n > maxPhoneDigits {
		return jidError("phone number must have %d to %d digits, got %d", minPhoneDigits, maxPhoneDigits, n)
	}
	if digits[0] == '0' {
		return jidError("phone number must start with the country code, not 0")
	}
	return nil
}

func checkDigits(kind, user string) error {
	if !allDigits(user) || len(user) > maxIDDigits {
		return jidError("%s id %q must be 1 to %d digits", kind, user, maxIDDigits)
	}
	return nil
}

// checkGroup accepts both group id forms: "120363012345678901" and the older
// "creatorphone-timestamp".
func checkGroup(user string) error {
	a, b, dash := strings.Cut(user, "-")
	if !allDigits(a) || len(a) > maxIDDigits || (dash && (!allDigits(b) || len(b) > maxIDDigits)) {
		return jidError("group id %q must be 1 to %d digits, or two such parts joined by -", user, maxIDDigits)
	}
	return nil
}

// dropDevice removes a ":device" suffix, which must be digits.
func dropDevice(user string) (string, error) {
	u, device, ok := strings.Cut(user, ":")
	if ok && !allDigits(device) {
		return "", jidError("device suffix %q must be digits", device)
	}
	return u, nil
}

// allDigits reports whether s is non-empty and made of ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
