package seenhandler

import (
	"encoding/json"
	"testing"
)

// decodeSeeds are bodies for FuzzDecode beside bodySeeds: nulls, empty
// lists, repeated keys, nested unknown values, numbers and literals
// everywhere, Meta's typing_indicator.
var decodeSeeds = []string{
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

// Both decoders keep [] apart from null and from an absent list: an empty
// list is a 400, the others ask for the whole chat (buildPlan).
func TestDecodersKeepEmptyList(t *testing.T) {
	body := []byte(`{"messageIds":[]}`)
	var std, exact seenRequest
	if err := json.Unmarshal(body, &std); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalExact(body, &exact); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]seenRequest{"json.Unmarshal": std, "unmarshalExact": exact} {
		if r.MessageIDs == nil || len(r.MessageIDs) != 0 {
			t.Errorf("%s: messageIds %#v, want an empty, non-nil list", name, r.MessageIDs)
		}
	}
}
