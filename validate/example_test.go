package validate_test

import (
	"errors"
	"fmt"

	"github.com/bluetick/bluetick/validate"
)

func ExampleNormalizeChat() {
	for _, in := range []string{"+1 (234) 567-890", "1234567890@c.us", "123456789:12@s.whatsapp.net", "120363012345678901@g.us"} {
		jid, err := validate.NormalizeChat(in)
		fmt.Println(jid, err)
	}
	_, err := validate.NormalizeChat("12345@broadcast")
	fmt.Println(err)
	// Output:
	// 1234567890@s.whatsapp.net <nil>
	// 1234567890@s.whatsapp.net <nil>
	// 123456789@s.whatsapp.net <nil>
	// 120363012345678901@g.us <nil>
	// invalid jid: broadcast lists (@broadcast) are not supported; status@broadcast is
}

func ExampleParseMessageID() {
	m, err := validate.ParseMessageID("false_120363012345678901@g.us_3EB0C767D26A1D98A4_15551234567@c.us")
	if err != nil {
		panic(err)
	}
	fmt.Println(m.ID, m.FromMe, m.Chat, m.Participant)
	// Output: 3EB0C767D26A1D98A4 false 120363012345678901@g.us 15551234567@s.whatsapp.net
}

func ExampleStruct() {
	type seen struct {
		ChatID     string   `json:"chatId" validate:"required,wa_chat"`
		MessageIDs []string `json:"messageIds" validate:"required,dive,wa_msgid"`
	}
	v := validate.New() // build once, share
	err := validate.Struct(v, seen{ChatID: "12@c.us", MessageIDs: []string{"3EB0", "not valid"}})
	var fields validate.Errors
	if errors.As(err, &fields) {
		for _, f := range fields {
			fmt.Printf("%s (%s): %s\n", f.Field, f.Rule, f.Message)
		}
	}
	// Output:
	// chatId (wa_chat): phone number must have 7 to 15 digits, got 2
	// messageIds[1] (wa_msgid): message id "not valid" may only contain A-Z, a-z, 0-9, _ and -
}
