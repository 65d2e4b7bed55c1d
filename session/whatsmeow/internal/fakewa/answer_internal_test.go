package fakewa

import (
	"testing"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// usyncQuery is a usync contact query for phones as whatsmeow's
// IsOnWhatsApp sends it, contact being the <contact> node of its query.
func usyncQuery(contact waBinary.Node, phones ...string) waBinary.Node {
	users := make([]waBinary.Node, len(phones))
	for i, p := range phones {
		users[i] = waBinary.Node{Tag: "user", Content: []waBinary.Node{{Tag: "contact", Content: p + "@" + types.LegacyUserServer}}}
	}
	return waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": "1", "type": "get", "xmlns": "usync"},
		Content: []waBinary.Node{{Tag: "usync", Content: []waBinary.Node{
			{Tag: "query", Content: []waBinary.Node{contact, {Tag: "business", Content: []waBinary.Node{{Tag: "verified_name"}}}}},
			{Tag: "list", Content: users},
		}}}}
}

// A usync contact query is answered with every number on WhatsApp: by its
// phone-number JID, or, when the query asks for LID addressing (newer
// whatsmeow's IsOnWhatsApp does, and reads jid, pn_jid and the contact's
// type), by the account's LID with its phone number as pn_jid.
func TestUsyncContacts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		contact waBinary.Node
		want    []string
	}{
		{"pn", waBinary.Node{Tag: "contact"}, []string{
			`<user jid="15550000002@s.whatsapp.net"><contact type="in">+15550000002@c.us</contact></user>`,
			`<user jid="15550000003@s.whatsapp.net"><contact type="in">15550000003@c.us</contact></user>`,
		}},
		{"lid", waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"addressing_mode": "lid"}}, []string{
			`<user jid="915550000002@lid" pn_jid="15550000002@s.whatsapp.net"><contact type="in">+15550000002@c.us</contact></user>`,
			`<user jid="915550000003@lid" pn_jid="15550000003@s.whatsapp.net"><contact type="in">15550000003@c.us</contact></user>`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := usyncContacts(usyncQuery(tc.contact, "+15550000002", "15550000003"))
			if len(got) != len(tc.want) {
				t.Fatalf("%d users, want %d", len(got), len(tc.want))
			}
			for i, u := range got {
				if XML(u) != tc.want[i] {
					t.Errorf("user %d:\n got %s\nwant %s", i, XML(u), tc.want[i])
				}
			}
		})
	}
}
