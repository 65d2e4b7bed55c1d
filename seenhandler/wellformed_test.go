package seenhandler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bluetick/bluetick/validate"
)

// wellFormed is the fast path past validator/v10: it must accept exactly
// what validate.Struct accepts.
func TestWellFormedAgreesWithValidator(t *testing.T) {
	v := validate.New()
	for _, body := range wellFormedSeeds {
		var req seenRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		checkWellFormed(t, v, &req)
	}
}

func FuzzWellFormed(f *testing.F) {
	for _, body := range wellFormedSeeds {
		f.Add([]byte(body))
	}
	v := validate.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req seenRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		checkWellFormed(t, v, &req)
	})
}

func checkWellFormed(t *testing.T, v interface{ Struct(any) error }, req *seenRequest) {
	t.Helper()
	fast := req.wellFormed()
	slow := v.Struct(req) == nil
	if fast != slow {
		t.Errorf("wellFormed = %v, validator says valid = %v, for %+v", fast, slow, *req)
	}
}

var wellFormedSeeds = []string{
	`{"session":"demo","to":"+1 (555) 123-4567","messageId":"3EB0C767D26A1D98A4"}`,
	`{"instance_id":"demo","access_token":"t","chatId":"120363012345678901@g.us","messageIds":["A","B"],"participant":"15557654321@c.us"}`,
	`{"session":"demo","chatId":"15551234567@c.us","messageIds":["false_15551234567@c.us_3EB0AA","true_15551234567@c.us_3EB0BB"]}`,
	`{"session":"demo","chatId":"15551234567","messageIds":["A"],"type":"played"}`,
	`{"session":"demo","chatId":"15551234567","messageIds":["A"],"type":"delivered"}`,
	`{"session":"` + strings.Repeat("s", 128) + `","chatId":"15551234567","messageIds":["A"]}`,
	`{"session":"` + strings.Repeat("s", 129) + `","chatId":"15551234567","messageIds":["A"]}`,
	`{"session":"dé","chatId":"15551234567"}`,
	`{"session":"tab\there","chatId":"15551234567"}`,
	`{"instance_id":"ok~","to":"status@broadcast"}`,
	`{"chatId":"a@b@c","messageIds":["x y"]}`,
	`{"messageIds":["", "A"]}`,
	`{"messageId":"` + strings.Repeat("A", 129) + `"}`,
	`{"participant":"120363@g.us"}`,
	`{"participant":"123456789012345@lid","to":"123456789:12@s.whatsapp.net"}`,
	`{"messageIds":null,"type":""}`,
	`{}`,
}
