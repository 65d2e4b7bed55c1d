package seenhandler

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends r as encoding/json would encode it (with HTML
// characters left as they are), without reflection: the success answer is
// on every request's path. TestAppendJSONMatchesEncodingJSON and
// FuzzAppendJSON hold the two to the same bytes.
func (r *response) appendJSON(b []byte) []byte {
	b = append(b, `{"success":`...)
	b = strconv.AppendBool(b, r.Success)
	b = append(b, `,"acknowledged":`...)
	b = strconv.AppendBool(b, r.Acknowledged)
	if r.Accepted {
		b = append(b, `,"accepted":true`...)
	}
	b = append(b, `,"session":`...)
	b = appendString(b, r.Session)
	b = append(b, `,"chatId":`...)
	b = appendString(b, r.ChatID)
	b = append(b, `,"receipts":`...)
	if r.Receipts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Receipts {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Receipts[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"skipped":`...)
	if r.Skipped == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range r.Skipped {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"messageId":`...)
			b = appendString(b, s.MessageID)
			b = append(b, `,"reason":`...)
			b = appendString(b, string(s.Reason))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if r.ChatRead != "" {
		b = append(b, `,"chatRead":`...)
		b = appendString(b, r.ChatRead)
	}
	if r.ChatMarkedRead != nil {
		b = append(b, `,"chatMarkedRead":`...)
		b = strconv.AppendBool(b, *r.ChatMarkedRead)
	}
	if r.Typing != "" {
		b = append(b, `,"typing":`...)
		b = appendString(b, string(r.Typing))
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, string(r.Reason))
	}
	if q := r.Queued; q != nil {
		b = append(b, `,"queued":{"reason":`...)
		b = appendString(b, string(q.Reason))
		b = append(b, `,"message":`...)
		b = appendString(b, q.Message)
		b = append(b, `,"retryUntil":"`...)
		b = q.RetryUntil.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"', '}')
	}
	if len(r.InFlight) > 0 {
		b = append(b, `,"inFlight":[`...)
		for i := range r.InFlight {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.InFlight[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}', '\n')
}

func (s *sentReceipt) appendJSON(b []byte) []byte {
	b = append(b, `{"chatId":`...)
	b = appendString(b, s.ChatID)
	if s.Sender != "" {
		b = append(b, `,"sender":`...)
		b = appendString(b, s.Sender)
	}
	if s.RequestedChatID != "" {
		b = append(b, `,"requestedChatId":`...)
		b = appendString(b, s.RequestedChatID)
	}
	if s.RequestedSender != "" {
		b = append(b, `,"requestedSender":`...)
		b = appendString(b, s.RequestedSender)
	}
	b = append(b, `,"messageIds":`...)
	if s.MessageIDs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, id := range s.MessageIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	b = append(b, `,"type":`...)
	b = appendString(b, s.Type)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off: ", \ and control characters escaped, invalid UTF-8
// replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
