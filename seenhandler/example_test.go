package seenhandler_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bluetick/bluetick/seenhandler"
	"github.com/bluetick/bluetick/session/sessiontest"
)

// A Wasend-style request against a handler whose backend is the recording
// fake from sessiontest.
func Example() {
	fake := sessiontest.New()
	auth, err := seenhandler.NewStaticAuth(map[string][]string{"secret": {seenhandler.AllSessions}})
	if err != nil {
		panic(err)
	}
	h, err := seenhandler.New(fake.Registry("support"), seenhandler.WithAuth(auth))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	seenhandler.Mount(mux, h)

	req := httptest.NewRequest("POST", "/sendSeen",
		strings.NewReader(`{"session":"support","to":"+1 (555) 123-4567","messageId":"3EB0C767D26A1D98A4"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer secret")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)

	fmt.Print(w.Code, " ", w.Body)
	for _, r := range fake.Receipts() {
		fmt.Println(r.Chat, r.MessageIDs, r.Type)
	}
	// Output:
	// 200 {"success":true,"acknowledged":true,"session":"support","chatId":"15551234567@s.whatsapp.net","receipts":[{"chatId":"15551234567@s.whatsapp.net","messageIds":["3EB0C767D26A1D98A4"],"type":"read"}],"skipped":[]}
	// 15551234567@s.whatsapp.net [3EB0C767D26A1D98A4] read
}

// A WAHA-style group request: serialized ids carry the sender, own
// messages are skipped, and a field error names the field the client sent.
func ExampleHandler_waha() {
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("default"), seenhandler.WithNoAuth())
	if err != nil {
		panic(err)
	}
	post := func(body string) {
		req := httptest.NewRequest("POST", "/api/sendSeen", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		out, _ := io.ReadAll(w.Body)
		fmt.Print(w.Code, " ", string(out))
	}
	post(`{"session":"default","chatId":"120363012345678901@g.us","messageIds":[
		"false_120363012345678901@g.us_AAA_15551234567@c.us",
		"true_120363012345678901@g.us_BBB"]}`)
	post(`{"session":"default","chatId":"12345@broadcast","messageIds":["AAA"]}`)
	// Output:
	// 201 {"success":true,"acknowledged":true,"session":"default","chatId":"120363012345678901@g.us","receipts":[{"chatId":"120363012345678901@g.us","sender":"15551234567@s.whatsapp.net","messageIds":["AAA"],"type":"read"}],"skipped":[{"messageId":"true_120363012345678901@g.us_BBB","reason":"from_me"}]}
	// 400 {"success":false,"message":"the request has invalid fields: chatId: broadcast lists (@broadcast) are not supported; status@broadcast is","error":{"code":"validation_failed","message":"the request has invalid fields: chatId: broadcast lists (@broadcast) are not supported; status@broadcast is","fields":[{"field":"chatId","rule":"wa_chat","message":"broadcast lists (@broadcast) are not supported; status@broadcast is"}]}}
}

// Routes with the session in the path, on net/http's ServeMux.
func ExampleWithPathSession() {
	fake := sessiontest.New()
	h, err := seenhandler.New(fake.Registry("sales"), seenhandler.WithNoAuth(),
		seenhandler.WithPathSession(seenhandler.PathValue("session")))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sessions/{session}/seen", h)

	req := httptest.NewRequest("POST", "/sessions/sales/seen", strings.NewReader(`{"chatId":"15551234567","messageIds":["A1","A2"]}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code, fake.Calls()[0].Session, fake.Receipts()[0].MessageIDs)
	// Output: 200 sales [A1 A2]
}
