package seenhandler

import (
	"encoding/json"
	"reflect"
	"testing"
)

// plainSeeds are bodies for decodePlain beside bodySeeds: nulls, empty
// lists, repeated keys, nested unknown values, numbers and literals
// everywhere, Meta's typing_indicator.
var plainSeeds = []string{
	`{"session":null,"chatId":"15551234567","messageId":null,"messageIds":null}`,
	`{"session":"demo","chatId":"15551234567","messageIds":[]}`,
	`{"session":"demo","messageIds":[null,"A",null]}`,
	`{"session":"demo","session":null}`, `{"messageIds":["A"],"messageIds":null}`, `{"messageId":"A","messageId":null}`,
	`{"x":[1,-2.5e+3,true,false,null,{"y":{"z":[[]]}},"s"],"session":"demo","n":0,"t":true,"f":false,"o":{}}`,
	` { "session" : "demo" , "chatId" : "15551234567" , "messageIds" : [ "A" , "B" ] } ` + "\r\n",
	`{"async":true,"typing":false}`, `{"async":null,"typing":null}`, `{"async":"true"}`, `{"async":1}`,
	`{"typing_indicator":{"type":"text"}}`, `{"typing_indicator":{"type":null,"x":[1]}}`, `{"typing_indicator":{}}`,
	`{"typing_indicator":null}`, `{"typing_indicator":{"TYPE":"text"}}`, `{"typing_indicator":{"type":"text","type":"no"}}`,
	`{"typing_indicator":[]}`, `{"typing_indicator":{"type":1}}`, `{"Type":"read"}`, `{"type":"played","TYPE":"read"}`,
	`{"session":"a\"b"}`, `{"x":"\"","session":"demo"}`, `{"session":"dé"}`, `{"session":["demo"]}`, `{"messageIds":[1]}`,
	`{"messageIds":{}}`, `{"chatId":123}`, `{}`, `{"":""}`, `{"session":"demo"}   x`,
}

// checkPlain fails t if decodePlain decodes body otherwise than
// json.Unmarshal and unmarshalExact do.
func checkPlain(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		return // decodeJSON asks decodePlain only about valid JSON
	}
	var plain seenRequest
	if !plain.decodePlain(body) {
		return
	}
	var std, exact seenRequest
	if err := json.Unmarshal(body, &std); err != nil || !reflect.DeepEqual(plain, std) {
		t.Fatalf("decodePlain(%q) = %+v; json.Unmarshal: %+v, %v", body, plain, std, err)
	}
	if err := unmarshalExact(body, &exact); err != nil || !reflect.DeepEqual(plain, exact) {
		t.Fatalf("decodePlain(%q) = %+v; unmarshalExact: %+v, %v", body, plain, exact, err)
	}
}

func TestDecodePlain(t *testing.T) {
	for _, s := range append(bodySeeds, plainSeeds...) {
		checkPlain(t, []byte(s))
	}
	// The bodies clients send take the plain path.
	for _, s := range append(bodySeeds[:14], plainSeeds[:3]...) {
		var req seenRequest
		if !req.decodePlain([]byte(s)) {
			t.Errorf("decodePlain(%q) refused a plain body", s)
		}
	}
	// And what needs encoding/json does not.
	for _, s := range []string{`{"session":"demo","session":null}`, `{"SESSION":"demo"}`, `{"\u0073ession":"demo"}`,
		`{"session":"dé"}`, `{"async":"true"}`, `{"typing_indicator":{"type":1}}`, `[]`, `{"session":"demo"}   x`} {
		var req seenRequest
		if req.decodePlain([]byte(s)) {
			t.Errorf("decodePlain(%q) = %+v, want it left to encoding/json", s, req)
		}
	}
}

// FuzzDecodePlain: what decodePlain decodes, json.Unmarshal and
// unmarshalExact decode alike.
func FuzzDecodePlain(f *testing.F) {
	for _, s := range append(bodySeeds, plainSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPlain(t, body)
	})
}

// Each decoder keeps [] apart from null and from an absent list: an empty
// list is a 400, the others ask for the whole chat (buildPlan).
func TestDecodersKeepEmptyList(t *testing.T) {
	body := []byte(`{"messageIds":[]}`)
	var plain, std, exact seenRequest
	if !plain.decodePlain(body) {
		t.Fatal("decodePlain refused a plain body")
	}
	if err := json.Unmarshal(body, &std); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(body, &exact); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]seenRequest{"decodePlain": plain, "json.Unmarshal": std, "unmarshalExact": exact} {
		if r.MessageIDs == nil || len(r.MessageIDs) != 0 {
			t.Errorf("%s: messageIds %#v, want an empty, non-nil list", name, r.MessageIDs)
		}
	}
}
