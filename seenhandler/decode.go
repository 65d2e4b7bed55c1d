package seenhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/bluetick/bluetick/validate"
)

// seenRequest is the union of the three dialects' bodies. Aliases:
// session = instance_id; chatId = to; ids = messageId ∪ messageIds. Unknown
// fields are ignored.
type seenRequest struct {
	Session     string   `json:"session" validate:"omitempty,max=128,printascii"`
	InstanceID  string   `json:"instance_id" validate:"omitempty,max=128,printascii"`
	AccessToken string   `json:"access_token"`
	ChatID      string   `json:"chatId" validate:"omitempty,wa_chat"`
	To          string   `json:"to" validate:"omitempty,wa_chat"`
	MessageID   string   `json:"messageId" validate:"omitempty,wa_msgid"`
	MessageIDs  []string `json:"messageIds" validate:"omitempty,dive,wa_msgid"`
	Participant string   `json:"participant" validate:"omitempty,wa_participant"`
	Type        string   `json:"type" validate:"omitempty,oneof=read played"`
	Async       *bool    `json:"async"`
}

// wellFormed reports whether req passes its validate tags, checked
// without reflection. It must agree with validate.Struct on every request
// (TestWellFormedAgreesWithValidator and FuzzWellFormed hold it to that).
func (req *seenRequest) wellFormed() bool {
	for _, name := range []string{req.Session, req.InstanceID} {
		if len(name) > 128 || !printableASCII(name) {
			return false
		}
	}
	for _, chat := range []string{req.ChatID, req.To} {
		if chat != "" {
			if _, err := validate.NormalizeChat(chat); err != nil {
				return false
			}
		}
	}
	if req.MessageID != "" {
		if _, err := validate.ParseMessageID(req.MessageID); err != nil {
			return false
		}
	}
	for _, id := range req.MessageIDs {
		if _, err := validate.ParseMessageID(id); err != nil {
			return false
		}
	}
	if req.Participant != "" {
		if _, err := validate.NormalizeParticipant(req.Participant); err != nil {
			return false
		}
	}
	return req.Type == "" || req.Type == "read" || req.Type == "played"
}

// printableASCII is validator's printascii: every byte in 0x20–0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Dialects, for logs.
const (
	dialectWasend = "wasend"
	dialectWawp   = "wawp"
	dialectWAHA   = "waha"
)

// dialect names the API the request looks like, from its path or else its
// fields.
func (req *seenRequest) dialect(r *http.Request) string {
	switch {
	case strings.HasSuffix(r.URL.Path, PathWawp):
		return dialectWawp
	case strings.HasSuffix(r.URL.Path, PathWAHA):
		return dialectWAHA
	case strings.HasSuffix(r.URL.Path, PathWasend):
		return dialectWasend
	case req.InstanceID != "" || req.AccessToken != "":
		return dialectWawp
	case req.To != "":
		return dialectWasend
	}
	return dialectWAHA
}

// Request errors, mapped to statuses in errors.go.
var (
	errUnsupportedType = errors.New("unsupported media type")
)

// methodError is a request with a method the endpoint does not take.
type methodError struct{ allow string }

func (e *methodError) Error() string { return "method not allowed; use " + e.allow }

// jsonError is a body that is not the JSON object we take.
type jsonError struct {
	field string // the JSON field at fault, if known
	msg   string
}

func (e *jsonError) Error() string { return e.msg }

// checkContentType accepts application/json and application/*+json, with an
// optional utf-8 charset.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if strings.EqualFold(ct, "application/json") || strings.EqualFold(ct, "application/json; charset=utf-8") {
		return nil // the common spellings, without parsing
	}
	if ct == "" {
		return fmt.Errorf("%w: Content-Type is missing, send application/json", errUnsupportedType)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q cannot be parsed", errUnsupportedType, ct)
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fmt.Errorf("%w: Content-Type %q is not JSON, send application/json", errUnsupportedType, mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("%w: charset %q is not supported, send utf-8", errUnsupportedType, cs)
	}
	return nil
}

// decodeBody reads at most limit bytes of r's body into a seenRequest.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64) (*seenRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err // *http.MaxBytesError, or the client went away
	}
	return decodeJSON(body)
}

func decodeJSON(body []byte) (*seenRequest, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, &jsonError{msg: "the body is empty; send a JSON object"}
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return nil, &jsonError{msg: "the body must be a JSON object, not null"}
	}
	var req seenRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, describeJSONError(err)
	}
	return &req, nil
}

func describeJSONError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && strings.HasPrefix(syntax.Error(), "invalid character") && strings.HasSuffix(syntax.Error(), "after top-level value"):
		return &jsonError{msg: "the body has data after its JSON object"}
	case errors.As(err, &syntax) && syntax.Error() == "unexpected end of JSON input":
		return &jsonError{msg: "the body ends before its JSON object does"}
	case errors.As(err, &syntax):
		return &jsonError{msg: fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)}
	case errors.As(err, &typ) && typ.Field == "":
		return &jsonError{msg: "the body must be a JSON object, not " + typ.Value}
	case errors.As(err, &typ):
		want := typ.Type.String()
		switch want {
		case "string":
			want = "a string"
		case "[]string":
			want = "an array of strings"
		}
		return &jsonError{field: typ.Field, msg: fmt.Sprintf("%s must be %s, not %s", typ.Field, want, typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &jsonError{msg: "the body ends before its JSON object does"}
	}
	return &jsonError{msg: "the body is not valid JSON"}
}
