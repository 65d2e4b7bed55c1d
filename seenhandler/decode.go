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
)

// seenRequest is the union of the three dialects' bodies. Aliases:
// session = instance_id; chatId = to; ids = messageId ∪ messageIds. Unknown
// fields are ignored. buildPlan validates it.
type seenRequest struct {
	Session     string   `json:"session"`
	InstanceID  string   `json:"instance_id"`
	AccessToken string   `json:"access_token"`
	ChatID      string   `json:"chatId"`
	To          string   `json:"to"`
	MessageID   string   `json:"messageId"`
	MessageIDs  []string `json:"messageIds"`
	Participant string   `json:"participant"`
	Type        string   `json:"type"`
	Async       *bool    `json:"async"`
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
