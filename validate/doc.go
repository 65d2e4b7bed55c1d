// Package validate checks and normalises the values clients send to
// bluetick: chat and participant JIDs in any of the spellings WhatsApp
// gateways use, and message ids, plain or in WAHA's serialized form.
//
// Normalisation turns every spelling into the JID WhatsApp's protocol uses:
//
//	jid, err := validate.NormalizeChat("+1 (234) 567-890")
//	// jid.String() == "1234567890@s.whatsapp.net"
//	id, err := validate.ParseMessageID("false_1234567890@c.us_3EB0C767D26A1D98A4")
//	// id.ID == "3EB0C767D26A1D98A4", id.Chat.String() == "1234567890@s.whatsapp.net"
//
// [New] returns a validator/v10 instance with the custom tags registered
// (wa_chat, wa_participant, wa_msgid) that reports JSON field names; [Struct]
// runs it and translates its errors into [Errors], a list of [FieldError]
// that names the field as the client sent it, the rule, and a message a
// person can act on.
package validate
