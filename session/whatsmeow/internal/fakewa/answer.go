package fakewa

import (
	"context"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// preKeyCount is the number of one-time prekeys the server claims to hold for
// the device; at least whatsmeow.MinPreKeyCount, so the client uploads none.
const preKeyCount = 50

// answer sends whatever reply node n calls for. whatsmeow matches replies to
// its requests by tag ("iq" or "ack") and id.
func (c *conn) answer(ctx context.Context, n waBinary.Node) error {
	switch n.Tag {
	case "iq":
		if reply, ok := c.answerIQ(n); ok {
			if isGroupInfoQuery(n) && c.srv.hold(c, reply) {
				return nil
			}
			return c.send(ctx, reply)
		}
	case "receipt":
		if reply, ok := c.ackReceipt(n); ok {
			return c.send(ctx, reply)
		}
	}
	return nil
}

// answerIQ answers every get or set query with a result carrying the same id:
// app-state patches and fetches of the account's collections (see answerAppState),
// the privacy settings for xmlns="privacy", a group's info for a group-info
// query (see Server.SetGroup), a prekey count for xmlns="encrypt"
// with a <count/> child, every number of a usync contact query as on
// WhatsApp (see usyncContacts), a pairing ref for a pair code asked for
// (xmlns="md" with <link_code_companion_reg>; an error WithPairCodeErrors),
// and no content otherwise (pings, passive, prekey
// uploads, …). Results and errors the client sends are not answered.
func (c *conn) answerIQ(n waBinary.Node) (waBinary.Node, bool) {
	id, _ := n.Attrs["id"].(string)
	typ, _ := n.Attrs["type"].(string)
	if id == "" || (typ != "get" && typ != "set") {
		return waBinary.Node{}, false
	}
	reply := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id":   id,
		"type": "result",
		"from": types.ServerJID,
	}}
	xmlns, _ := n.Attrs["xmlns"].(string)
	switch {
	case xmlns == "privacy" && typ == "get" && c.srv.settings().privacyErrors:
		reply.Attrs["type"] = "error"
		reply.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "500", "text": "internal-server-error"}}}
	case xmlns == "privacy" && typ == "get":
		reply.Content = []waBinary.Node{{Tag: "privacy", Content: c.privacyCategories()}}
	case isGroupInfoQuery(n):
		c.answerGroupInfo(n, &reply)
	case xmlns == "w:sync:app:state":
		reply.Content = []waBinary.Node{{Tag: "sync", Content: c.answerAppState(n)}}
	case xmlns == "encrypt" && typ == "get" && hasChild(n, "count"):
		reply.Content = []waBinary.Node{{Tag: "count", Attrs: waBinary.Attrs{"value": preKeyCount}}}
	case xmlns == "usync":
		reply.Content = []waBinary.Node{{Tag: "usync", Content: []waBinary.Node{{Tag: "list", Content: usyncContacts(n)}}}}
	case xmlns == "md" && hasChild(n, "link_code_companion_reg") && c.srv.settings().pairCodeErrors:
		reply.Attrs["type"] = "error"
		reply.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "400", "text": "bad-request"}}}
	case xmlns == "md" && hasChild(n, "link_code_companion_reg"):
		// A pair code asked for: the ref that ties it to this pairing.
		reply.Content = []waBinary.Node{{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte("fakewa-link-ref")}}}}
	}
	return reply, true
}

func (c *conn) privacyCategories() []waBinary.Node {
	settings := []struct{ name, value string }{
		{"readreceipts", c.srv.settings().readReceipts},
		{"last", "all"},
		{"online", "all"},
		{"profile", "all"},
		{"status", "contacts"},
		{"groupadd", "all"},
		{"calladd", "all"},
	}
	nodes := make([]waBinary.Node, len(settings))
	for i, s := range settings {
		nodes[i] = waBinary.Node{Tag: "category", Attrs: waBinary.Attrs{"name": s.name, "value": s.value}}
	}
	return nodes
}

// ackReceipt acknowledges a receipt as WhatsApp does, with
// <ack class="receipt" id=… from=… type=…/>, except a receipt to a newsletter
// when the server runs WithoutNewsletterAck.
func (c *conn) ackReceipt(n waBinary.Node) (waBinary.Node, bool) {
	id, _ := n.Attrs["id"].(string)
	if id == "" {
		return waBinary.Node{}, false
	}
	to, _ := n.Attrs["to"].(types.JID)
	if to.Server == types.NewsletterServer && !c.srv.settings().newsletterAcks {
		c.log.Debugf("leaving newsletter receipt %s unanswered", id)
		return waBinary.Node{}, false
	}
	ack := waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{"class": "receipt", "id": id}}
	if !to.IsEmpty() {
		ack.Attrs["from"] = to
	}
	if typ, ok := n.Attrs["type"].(string); ok {
		ack.Attrs["type"] = typ
	}
	return ack, true
}

// usyncContacts answers the <contact>+number@c.us</contact> users of a
// usync query (whatsmeow's IsOnWhatsApp) with each number on WhatsApp:
// <user jid="number@s.whatsapp.net"><contact type="in">…</contact></user>.
// A query for <contact addressing_mode="lid"/> (newer whatsmeow's) is
// answered as WhatsApp answers it, by the account's LID with its phone
// number beside: <user jid="9number@lid" pn_jid="number@s.whatsapp.net">
// (the LID PairDeviceAs gives an account). Users asked for by jid are
// left out.
func usyncContacts(n waBinary.Node) []waBinary.Node {
	list, _ := n.GetOptionalChildByTag("usync", "list")
	mode, _ := n.GetOptionalChildByTag("usync", "query", "contact")
	byLID := mode.AttrGetter().OptionalString("addressing_mode") == "lid"
	var out []waBinary.Node
	for _, u := range list.GetChildrenByTag("user") {
		contact, ok := u.GetOptionalChildByTag("contact")
		query, _ := contact.Content.(string)
		if b, isBytes := contact.Content.([]byte); isBytes {
			query = string(b)
		}
		number := strings.TrimPrefix(strings.TrimSuffix(query, "@"+types.LegacyUserServer), "+")
		if !ok || number == "" {
			continue
		}
		attrs := waBinary.Attrs{"jid": types.NewJID(number, types.DefaultUserServer)}
		if byLID {
			attrs = waBinary.Attrs{"jid": types.NewJID("9"+number, types.HiddenUserServer), "pn_jid": attrs["jid"]}
		}
		out = append(out, waBinary.Node{Tag: "user", Attrs: attrs,
			Content: []waBinary.Node{{Tag: "contact", Attrs: waBinary.Attrs{"type": "in"}, Content: []byte(query)}}})
	}
	return out
}

func hasChild(n waBinary.Node, tag string) bool {
	_, ok := n.GetOptionalChildByTag(tag)
	return ok
}
