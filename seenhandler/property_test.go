package seenhandler_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/seenhandler/queue"
	"github.com/bluetick/bluetick/validate"
)

// The OpenAPI document says what the server accepts. Bodies
// are generated from the document's SeenRequest: a valid base, one of its
// properties (each, in turn, as the document lists them) set to a value
// generated for that property's schema (its types, nulls, enums; strings from
// a small grammar of phone numbers, JIDs and ids, right and wrong). The
// document accepts the body exactly when the server finds no fault with that
// field; cross-field rules (required, conflict, same_chat), which a schema
// cannot say, are left out. request.do also checks every accepted body and
// every answer against the document.
func TestDocumentAgreesWithServer(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(seenhandler.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["SeenRequest"].Value
	names := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	h, _, _ := newAsyncHandler(t, queue.Options{})
	validityRules := []string{"wa_chat", "wa_participant", "wa_msgid", "wa_session", "oneof", "min", "max", "type"}

	rng := rand.New(rand.NewPCG(13, 5))
	const rounds = 1000
	agree := map[string][2]int{} // per property: schema-valid and -invalid bodies
	for i := range rounds {
		field := names[i%len(names)]
		body := map[string]any{"session": "demo", "chatId": "15551234567@c.us", "messageIds": []any{"A1"}, "participant": "15557654321@c.us"}
		switch field {
		case "to":
			delete(body, "chatId")
		case "instance_id":
			delete(body, "session")
		case "messageId":
			delete(body, "messageIds")
		}
		body[field] = generate(rng, schema.Properties[field].Value, 0)
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		var decoded any // as a JSON decoder gives it, for the schema
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		schemaErr := schema.VisitJSON(decoded)

		w := request{body: string(raw)}.do(t, h)
		serverOK := w.Code < 300
		if !serverOK {
			var got seenhandler.ErrorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			switch got.Error.Code {
			case seenhandler.CodeInvalidJSON:
			case seenhandler.CodeValidationFailed:
				serverOK = !slices.ContainsFunc(got.Error.Fields, func(f validate.FieldError) bool {
					return (f.Field == field || strings.HasPrefix(f.Field, field+"[")) && slices.Contains(validityRules, f.Rule)
				})
			case seenhandler.CodeSessionNotFound:
				serverOK = true // a valid name that names no session
			case seenhandler.CodeInvalidReceipt:
				serverOK = true // the backend's cross-field rule: a channel's ids are numeric, or messages it saw
			default:
				t.Fatalf("%s: unexpected %d %s", raw, w.Code, w.Body)
			}
		}
		if (schemaErr == nil) != serverOK {
			t.Errorf("%s: the document says %v, the server %d %s", raw, schemaErr, w.Code, w.Body)
		}
		n := agree[field]
		if schemaErr == nil {
			n[0]++
		} else {
			n[1]++
		}
		agree[field] = n
	}
	for _, name := range names {
		t.Logf("%-12s %4d valid, %4d invalid", name, agree[name][0], agree[name][1])
		if n := agree[name]; n[0] == 0 || (n[1] == 0 && name != "access_token") {
			t.Errorf("%s: the generator made %d valid and %d invalid values; it should make both", name, n[0], n[1])
		}
	}
}

// generate makes a value for schema s: one of its anyOf branches, types,
// enum values or consts, and now and then a value of a type it does not
// allow.
func generate(r *rand.Rand, s *openapi3.Schema, depth int) any {
	if len(s.AnyOf) > 0 {
		return generate(r, s.AnyOf[r.IntN(len(s.AnyOf))].Value, depth)
	}
	if r.IntN(12) == 0 { // a type nobody asked for
		return []any{12, true, map[string]any{"x": 1}, []any{}, "x"}[r.IntN(5)]
	}
	if len(s.Enum) > 0 {
		if r.IntN(4) == 0 {
			return []string{"READ", "delivered", " read", "play"}[r.IntN(4)]
		}
		return s.Enum[r.IntN(len(s.Enum))]
	}
	if s.Const != nil {
		return s.Const
	}
	var types []string
	if s.Type != nil {
		types = s.Type.Slice()
	}
	if len(types) == 0 {
		return genString(r)
	}
	switch types[r.IntN(len(types))] {
	case "null":
		return nil
	case "boolean":
		return r.IntN(2) == 0
	case "array":
		if depth > 0 {
			return []any{}
		}
		items := make([]any, r.IntN(4))
		for i := range items {
			items[i] = generate(r, s.Items.Value, depth+1)
		}
		return items
	}
	return genString(r)
}

// genString makes a string from a small grammar of the values a client may
// send, right and wrong: phone numbers, JIDs, plain and serialized ids, names.
func genString(r *rand.Rand) string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	digits := func(lo, hi int) string {
		n := lo + r.IntN(hi-lo+1)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		if n > 0 && r.IntN(4) != 0 && b[0] == '0' {
			b[0] = '1'
		}
		return string(b)
	}
	server := func() string {
		s := pick("s.whatsapp.net", "c.us", "g.us", "lid", "newsletter", "broadcast", "example.com", "", "C.US", "S.WhatsApp.Net", "LID")
		return s
	}
	jid := func() string {
		user := digits(0, 27)
		switch r.IntN(6) {
		case 0:
			user += ":" + digits(0, 2)
		case 1:
			user += "-" + digits(0, 27)
		case 2:
			user = pick("+", "a", " ") + user
		}
		return user + "@" + server()
	}
	phone := func() string {
		var b strings.Builder
		for _, c := range digits(5, 17) {
			if r.IntN(4) == 0 {
				b.WriteString(pick("+", " ", "-", ".", "(", ")", "/", "x"))
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	plain := func() string {
		const ok = "ABCDEFabcdef0123456789_-"
		n := pick("1", "8", "18", "128", "129", "0")
		size := map[string]int{"0": 0, "1": 1, "8": 8, "18": 18, "128": 128, "129": 129}[n]
		b := make([]byte, size)
		for i := range b {
			b[i] = ok[r.IntN(len(ok))]
		}
		if size > 0 && r.IntN(6) == 0 {
			b[r.IntN(size)] = pick(" ", ".", "é", "@", "/")[0]
		}
		return string(b)
	}
	var s string
	switch r.IntN(6) {
	case 0:
		s = phone()
	case 1, 2:
		s = jid()
	case 3:
		s = plain()
	case 4:
		s = pick("true", "false", "TRUE", "x") + "_" + jid() + "_" + plain()
		if r.IntN(2) == 0 {
			s += "_" + jid()
		}
	default:
		s = pick("demo", "other", "", "a b", "sales\x00", "\x7f", strings.Repeat("n", 128), strings.Repeat("n", 129), "ünï", "tab\t")
	}
	if r.IntN(8) == 0 {
		s = pick(" ", "\t", "\n") + s + pick("", " ")
	}
	return s
}
