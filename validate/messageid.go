package validate

import (
	"errors"
	"fmt"
	"strings"
)

// MaxMessageIDLen is the longest message id accepted.
const MaxMessageIDLen = 128

// ErrInvalidMessageID is wrapped by every error ParseMessageID returns.
var ErrInvalidMessageID = errors.New("invalid message id")

// MessageID is a parsed message id. A plain id ("3EB0C767D26A1D98A4") sets
// only ID; a WAHA serialized id
// ("false_1234567890@c.us_3EB0C767D26A1D98A4_5551234567@c.us") also sets
// Serialized, FromMe, Chat and, when present, Participant.
type MessageID struct {
	// ID is the bare WhatsApp message id.
	ID string
	// Serialized reports whether the id came in serialized form.
	Serialized bool
	// FromMe is the serialized form's first part: the account itself sent
	// the message.
	FromMe bool
	// Chat is the serialized form's chat, normalised.
	Chat JID
	// Participant is the serialized form's optional fourth part: the sender
	// of a group message, normalised.
	Participant JID
}

// ParseMessageID parses a plain message id (1–128 characters of A–Z, a–z,
// 0–9, _ and -) or a serialized one, "true|false_<chat jid>_<id>" with an
// optional "_<participant jid>". Errors wrap ErrInvalidMessageID.
func ParseMessageID(s string) (MessageID, error) {
	if !strings.Contains(s, "@") {
		if err := checkPlainID(s); err != nil {
			return MessageID{}, err
		}
		return MessageID{ID: s}, nil
	}
	var m MessageID
	fromMe, rest, _ := strings.Cut(s, "_")
	switch fromMe {
	case "true":
		m.FromMe = true
	case "false":
	default:
		return MessageID{}, idError("serialized id %q must start with true_ or false_", s)
	}
	// The chat JID runs to the first "_" after its "@".
	at := strings.IndexByte(rest, '@')
	end := -1
	if at >= 0 {
		end = strings.IndexByte(rest[at:], '_')
	}
	if end < 0 {
		return MessageID{}, idError("serialized id %q must look like false_<chat>@<server>_<id>", s)
	}
	chat, err := NormalizeChat(rest[:at+end])
	if err != nil {
		return MessageID{}, idError("serialized id %q: chat: %s", s, reason(err))
	}
	id := rest[at+end+1:]
	if i := strings.LastIndexByte(id, '_'); i >= 0 && strings.Contains(id[i+1:], "@") {
		p, err := NormalizeParticipant(id[i+1:])
		if err != nil {
			return MessageID{}, idError("serialized id %q: participant: %s", s, reason(err))
		}
		m.Participant = p
		id = id[:i]
	}
	if err := checkPlainID(id); err != nil {
		return MessageID{}, err
	}
	m.ID, m.Serialized, m.Chat = id, true, chat
	return m, nil
}

func checkPlainID(s string) error {
	if s == "" || len(s) > MaxMessageIDLen {
		return idError("message id must be 1 to %d characters, got %d", MaxMessageIDLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return idError("message id %q may only contain A-Z, a-z, 0-9, _ and -", s)
		}
	}
	return nil
}

func idError(format string, args ...any) error {
	return &reasonError{kind: ErrInvalidMessageID, reason: fmt.Sprintf(format, args...)}
}
