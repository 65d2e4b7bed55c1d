package validate_test

import (
	"errors"
	"testing"

	"github.com/bluetick/bluetick/validate"
)

type request struct {
	Chat        string   `json:"chatId" validate:"required,wa_chat"`
	Participant string   `json:"participant" validate:"omitempty,wa_participant"`
	IDs         []string `json:"messageIds" validate:"required,max=3,dive,wa_msgid"`
	Type        string   `json:"type" validate:"omitempty,oneof=read played"`
	Internal    string   `json:"-" validate:"omitempty,max=1"`
}

func TestStruct(t *testing.T) {
	v := validate.New()
	valid := request{Chat: "+1 555 123 4567", IDs: []string{"3EB0", "false_15551234567@c.us_3EB1"}, Type: "played"}
	if err := validate.Struct(v, valid); err != nil {
		t.Fatalf("valid request: %v", err)
	}

	tests := []struct {
		name string
		req  request
		want validate.Errors
	}{
		{"missing chat and ids", request{},
			validate.Errors{
				{Field: "chatId", Rule: "required", Message: "is required"},
				{Field: "messageIds", Rule: "required", Message: "is required"},
			}},
		{"bad chat", request{Chat: "12345@broadcast", IDs: []string{"A"}},
			validate.Errors{{Field: "chatId", Rule: "wa_chat", Message: "broadcast lists (@broadcast) are not supported; status@broadcast is"}}},
		{"bad id in list", request{Chat: "15551234567", IDs: []string{"A", "B C"}},
			validate.Errors{{Field: "messageIds[1]", Rule: "wa_msgid", Message: `message id "B C" may only contain A-Z, a-z, 0-9, _ and -`}}},
		{"too many ids", request{Chat: "15551234567", IDs: []string{"A", "B", "C", "D"}},
			validate.Errors{{Field: "messageIds", Rule: "max", Message: "must have at most 3 items"}}},
		{"group participant", request{Chat: "15551234567", IDs: []string{"A"}, Participant: "120363@g.us"},
			validate.Errors{{Field: "participant", Rule: "wa_participant", Message: "a participant must be a person (@s.whatsapp.net, @c.us or @lid), not @g.us"}}},
		{"bad type", request{Chat: "15551234567", IDs: []string{"A"}, Type: "delivered"},
			validate.Errors{{Field: "type", Rule: "oneof", Message: "must be one of: read played"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validate.Struct(v, tc.req)
			var got validate.Errors
			if !errors.As(err, &got) {
				t.Fatalf("Struct = %v, want validate.Errors", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Struct = %#v, want %#v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("error %d = %#v, want %#v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestStructNotAStruct(t *testing.T) {
	err := validate.Struct(validate.New(), 42)
	if err == nil {
		t.Fatal("Struct(42) = nil, want an error")
	}
	var fe validate.Errors
	if errors.As(err, &fe) {
		t.Errorf("Struct(42) = %v, want a non-field error", err)
	}
}

func TestErrorsText(t *testing.T) {
	errs := validate.Errors{{Field: "a", Rule: "r", Message: "m1"}, {Field: "b", Rule: "r", Message: "m2"}}
	if got, want := errs.Error(), "a: m1; b: m2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
