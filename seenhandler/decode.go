package seenhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// seenRequest is the union of the three dialects' bodies. Aliases:
// session = instance_id; chatId = to; ids = messageId ∪ messageIds. Keys
// match exactly (see seenRequest.decode); unknown fields, other spellings of ours
// among them, are ignored. A null is the same as an absent field, except in
// messageIds. buildPlan validates it.
type seenRequest struct {
	Session     string      `json:"session"`
	InstanceID  string      `json:"instance_id"`
	AccessToken string      `json:"access_token"`
	ChatID      string      `json:"chatId"`
	To          string      `json:"to"`
	MessageID   optString   `json:"messageId"`
	MessageIDs  []optString `json:"messageIds"`
	Participant string      `json:"participant"`
	Type        string      `json:"type"`
	Async       *bool       `json:"async"`
	// Typing and TypingIndicator (Meta's {"type": "text"}) ask for
	// "typing…" in the chat after the receipts.
	Typing          *bool            `json:"typing"`
	TypingIndicator *typingIndicator `json:"typing_indicator"`
}

// typingIndicator is Meta's "typing_indicator" object. Its one key, type,
// matches exactly (encoding/json would match "TYPE" too).
type typingIndicator struct {
	Type optString `json:"type"` // for json.Marshal; UnmarshalJSON matches it exactly
}

var typingIndicatorType = reflect.TypeFor[typingIndicator]()

// UnmarshalJSON implements json.Unmarshaler: an object whose "type" is a
// string; null leaves the field nil (encoding/json does not call it then).
func (ti *typingIndicator) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		v := "nothing"
		if len(b) > 0 {
			v = jsonKind(b[0])
			if b[0] == '"' {
				v = "string"
			}
		}
		return &json.UnmarshalTypeError{Value: v, Type: typingIndicatorType, Field: "typing_indicator"}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	*ti = typingIndicator{}
	if raw, ok := obj["type"]; ok {
		if err := ti.Type.UnmarshalJSON(raw); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				typ.Field = "typing_indicator.type"
			}
			return err
		}
	}
	return nil
}

// optString is a JSON string that remembers whether it was given: ok is
// false for null (and for an absent field), so that "messageId": "" (a bad
// id) differs from no messageId (the whole chat), and [null] from [""].
type optString struct {
	s  string
	ok bool
}

var stringType = reflect.TypeFor[string]()

// UnmarshalJSON implements json.Unmarshaler. encoding/json has checked b's
// syntax before calling it.
func (o *optString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return &json.UnmarshalTypeError{Value: "nothing", Type: stringType}
	case b[0] == 'n':
		*o = optString{}
		return nil
	case b[0] != '"':
		return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: stringType}
	}
	if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*o = optString{s: string(inner), ok: true}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*o = optString{s: s, ok: true}
	return nil
}

// MarshalJSON implements json.Marshaler: null when not given.
func (o optString) MarshalJSON() ([]byte, error) {
	if !o.ok {
		return []byte("null"), nil
	}
	return json.Marshal(o.s)
}

// jsonKind names the kind of JSON value that starts with c, as
// json.UnmarshalTypeError.Value does.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
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
	if d := pathDialect(r); d != "" {
		return d
	}
	switch {
	case req.InstanceID != "" || req.AccessToken != "":
		return dialectWawp
	case req.To != "":
		return dialectWasend
	}
	return dialectWAHA
}

// pathDialect names the API whose path r has, or "".
func pathDialect(r *http.Request) string {
	switch {
	case strings.HasSuffix(r.URL.Path, PathWawp):
		return dialectWawp
	case strings.HasSuffix(r.URL.Path, PathWAHA):
		return dialectWAHA
	case strings.HasSuffix(r.URL.Path, PathWasend):
		return dialectWasend
	}
	return ""
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
		return fmt.Errorf("%w: Content-Type cannot be parsed, send application/json", errUnsupportedType)
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fmt.Errorf("%w: Content-Type is not JSON, send application/json", errUnsupportedType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("%w: the charset is not supported, send utf-8", errUnsupportedType)
	}
	return nil
}

// bodyError is a body that could not be read to its end: the client cut
// it off, or sent it too slowly for the server's read deadline (timeout).
// Either is the client's doing.
type bodyError struct {
	err     error
	timeout bool
}

func (e *bodyError) Error() string { return "reading the body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// decodeBody reads at most limit bytes of r's body and decodes it into
// req; it returns the body too, as read (for a [Forwarder]), in a buffer of
// buffers, for the caller to give back with putBuffer (req keeps no part of
// it).
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, req *seenRequest) (*[]byte, error) {
	bp := buffers.Get().(*[]byte)
	var err error
	*bp, err = readBody(w, r, limit, (*bp)[:0])
	if err != nil {
		putBuffer(bp)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		var ne net.Error
		timeout := errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		return nil, &bodyError{err: err, timeout: timeout}
	}
	if err := req.decode(*bp); err != nil {
		putBuffer(bp)
		return nil, err
	}
	return bp, nil
}

// readBody appends r's body to buf and returns it, as
// bytes.Buffer.ReadFrom(http.MaxBytesReader(w, r.Body, limit)) does, but
// without that reader's allocation per request: at most limit bytes; a
// body longer than that fails with an *http.MaxBytesError (413), and w is
// told, as http.MaxBytesReader tells the server's own, to close the
// connection rather than read the rest (see endsAtLimit). The buffer grows
// as the body arrives, not to a Content-Length the client claims.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, error) {
	for {
		room := limit - int64(len(buf))
		if room == 0 {
			return buf, endsAtLimit(w, r.Body, limit)
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, bytes.MinRead)
		}
		free := buf[len(buf):cap(buf)]
		if int64(len(free)) > room {
			free = free[:room]
		}
		n, err := r.Body.Read(free)
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}

// endsAtLimit reads on from body, of which limit bytes have been read: nil
// if it ends there, else an *http.MaxBytesError. It reads through an
// http.MaxBytesReader with no room left, for what only that reader can do:
// tell the server (an unexported method of its ResponseWriter) to close
// the connection after the answer rather than read the rest of the body.
func endsAtLimit(w http.ResponseWriter, body io.ReadCloser, limit int64) error {
	rest := http.MaxBytesReader(w, body, 0)
	var b [1]byte
	for {
		_, err := rest.Read(b[:])
		var tooLarge *http.MaxBytesError
		switch {
		case err == io.EOF:
			return nil
		case errors.As(err, &tooLarge):
			return &http.MaxBytesError{Limit: limit}
		case err != nil:
			return err
		}
	}
}

// decode sets req, a zero seenRequest, from body: with decodePlain when
// body is plain (nearly always), else with encoding/json, whose errors
// become the answer's. decodePlain accepts only valid JSON (it checks the
// syntax as it goes), so a plain body is read once rather than twice, by
// json.Valid first; whatever else it refuses, every malformed body among
// them, encoding/json decodes or describes as before.
//
// The hand-written decoder (decodePlain) and the hand encoder of response
// (appendJSON, see writeJSON) are kept because together they buy more than
// the 5% end to end that pays for keeping them in step with encoding/json
// (the fuzzers hold them to its values and bytes). BenchmarkEndToEnd
// (session/whatsmeow, subjects Bluetick and Bare, 32 clients, 20,000
// requests a round, 30 rounds of each build alternating, medians, Go 1.26
// on 2 otherwise idle cores), the gateway process's own CPU per request,
// hand-written against encoding/json only:
//
//	sessions=1   busy:   38.4 against 41.0 µs (-6.5%), 24,400 against 23,800 req/s (+2.5%)
//	sessions=1   spread: 54.9 against 59.3 µs (-7.3%), 18,100 against 17,300 req/s (+4.9%)
//	sessions=100 busy:   67.4 against 71.2 µs (-5.3%), 15,600 against 15,200 req/s (+3.1%)
//	sessions=100 spread: 67.1 against 70.6 µs (-5.0%), 15,700 against 15,500 req/s (+1.1%)
//
// (12 rounds each with 100 sessions). Against Bare in the same round, which
// cancels the machine's drift, Bluetick's CPU per request fell 7.6% (busy)
// and 4.8% (spread) with one session, its throughput rose 5.1% and 5.3%.
// In process (BenchmarkHandler, 8 alternating runs) a request costs 6,970
// against 8,520 ns (-18%), 43 against 51 allocations.
func (req *seenRequest) decode(body []byte) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return &jsonError{msg: "the body is empty; send a JSON object"}
	}
	if bytes.Equal(trimmed, []byte("null")) {
		return &jsonError{msg: "the body must be a JSON object, not null"}
	}
	if req.decodePlain(body) {
		return nil
	}
	// encoding/json keeps the pointer it is given (an any): decoding into
	// another lets req stay on its caller's stack.
	slow := new(seenRequest)
	decode := json.Unmarshal
	if needsExact(body) {
		decode = unmarshalExact
	}
	if err := decode(body, slow); err != nil {
		return describeJSONError(err)
	}
	*req = *slow
	return nil
}

// requestKey is a key of seenRequest, with the field it sets.
type requestKey struct {
	key   string
	field func(*seenRequest) any
}

// requestKeys are the keys of seenRequest, with the field each sets: an
// array, so that its length is a constant keySet is checked against.
var requestKeys = [...]requestKey{
	{"session", func(r *seenRequest) any { return &r.Session }},
	{"instance_id", func(r *seenRequest) any { return &r.InstanceID }},
	{"access_token", func(r *seenRequest) any { return &r.AccessToken }},
	{"chatId", func(r *seenRequest) any { return &r.ChatID }},
	{"to", func(r *seenRequest) any { return &r.To }},
	{"messageId", func(r *seenRequest) any { return &r.MessageID }},
	{"messageIds", func(r *seenRequest) any { return &r.MessageIDs }},
	{"participant", func(r *seenRequest) any { return &r.Participant }},
	{"type", func(r *seenRequest) any { return &r.Type }},
	{"async", func(r *seenRequest) any { return &r.Async }},
	{"typing", func(r *seenRequest) any { return &r.Typing }},
	{"typing_indicator", func(r *seenRequest) any { return &r.TypingIndicator }},
}

// keySet is a set of requestKeys, by index: decodePlain's record of the
// keys given.
type keySet uint16

// keySet must have a bit for each of requestKeys: a 17th key makes this
// constant overflow keySet and the package fail to compile, rather than
// decodePlain's set silently lose keys.
const _ keySet = 1 << (len(requestKeys) - 1)

// requestKeyIndex returns the index of key in requestKeys, or -1.
func requestKeyIndex(key string) int {
	return slices.IndexFunc(requestKeys[:], func(k requestKey) bool { return k.key == key })
}

// needsExact reports whether json.Unmarshal could set a field of
// seenRequest from a key that is not spelled exactly as ours: encoding/json
// matches keys case-insensitively (and folds ſ and K), so that
// {"session":"a","SESSION":"b"} would act on b. Bodies with a backslash or
// a non-ASCII byte (an escaped or folded key) or a string that equals one of
// our keys but for case take the exact, slower path; the others, nearly all,
// decode as they are.
func needsExact(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if c := body[i]; c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		end := bytes.IndexByte(body[i+1:], '"')
		if end < 0 {
			return false // a syntax error, reported by the decoder
		}
		s := body[i+1 : i+1+end]
		for _, k := range &requestKeys {
			if len(s) == len(k.key) && string(s) != k.key && bytes.EqualFold(s, []byte(k.key)) {
				return true
			}
		}
		i += end + 1
	}
	return false
}

// unmarshalExact decodes body into req, setting a field only from the key
// spelled exactly as its tag. Each occurrence of a repeated key is decoded
// in turn onto the same field, as json.Unmarshal does (a later null leaves
// a string as it was and empties a list).
func unmarshalExact(body []byte, v any) error {
	var obj map[string]json.RawMessage // the errors json.Unmarshal gives a body that is not an object
	if err := json.Unmarshal(body, &obj); err != nil {
		return err
	}
	req := v.(*seenRequest)
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		key, _ := t.(string)
		i := requestKeyIndex(key)
		if i < 0 {
			continue
		}
		if err := json.Unmarshal(raw, requestKeys[i].field(req)); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				typ.Field = key
			}
			return err
		}
	}
	return nil
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
		switch {
		case strings.HasPrefix(want, "[]"):
			want = "an array of strings"
		case want == "string" || strings.HasSuffix(want, "optString"):
			want = "a string"
		case want == "bool":
			want = "a boolean"
		case strings.HasSuffix(want, "typingIndicator"):
			want = "an object"
		}
		return &jsonError{field: typ.Field, msg: fmt.Sprintf("%s must be %s, not %s", typ.Field, want, typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &jsonError{msg: "the body ends before its JSON object does"}
	}
	return &jsonError{msg: "the body is not valid JSON"}
}

// decodePlain sets req from body and reports whether it could: nearly
// every request is a plain object that encoding/json's reflection (most of
// decoding's time) is not needed for. It returns false, leaving req partly
// set, for whatever is not plain, so that seenRequest.decode decodes body
// as before and reports its faults: a body that is not valid JSON (it
// accepts only what json.Valid does); one that is not an object; a string
// with an escape or a non-ASCII byte; one of our keys twice (json.Unmarshal
// and unmarshalExact then differ, a null after a string); a key that equals
// one of ours but for case; a value of the wrong type; values nested deeper
// than maxPlainDepth. What it decodes is what json.Unmarshal and
// unmarshalExact decode (FuzzDecodePlain holds them to it, and it to
// json.Valid).
func (req *seenRequest) decodePlain(body []byte) bool {
	d := plainDecoder{b: body}
	if !d.next('{') {
		return false
	}
	var seen keySet // requestKeys given
	ok := d.members(func(key []byte) bool {
		k := requestKeyIndex(string(key))
		switch {
		case k < 0 && foldsToKey(key):
			return false
		case k < 0:
			return d.value(0)
		case seen&(1<<k) != 0:
			return false
		}
		seen |= 1 << k
		return d.field(req, k)
	})
	if !ok {
		return false
	}
	d.space()
	if d.i != len(d.b) { // JSON allows only space after the object
		return false
	}
	d.own(req)
	return true
}

// foldsToKey reports whether key equals one of requestKeys but for case.
func foldsToKey(key []byte) bool {
	for _, k := range &requestKeys {
		if len(k.key) == len(key) && bytes.EqualFold(key, []byte(k.key)) {
			return true
		}
	}
	return false
}

// plainDecoder walks a JSON text for decodePlain, checking its syntax:
// each of its methods fails on what JSON does not allow where it reads.
type plainDecoder struct {
	b []byte
	i int
	// kept are the strings decoded so far, where they go and where they
	// are in b: own makes them strings once the body has decoded, all in
	// one allocation rather than one each (a request's session, chat and
	// id were three or four). When kept is full, a string is made on its
	// own as it is decoded.
	kept  [8]keptString
	nkept int
}

// keptString is a string of the body that decodePlain keeps: the string
// of requestKeys[key] (of its element elem for messageIds, of its type for
// typing_indicator; see seenRequest.stringOf), at b[start:end].
type keptString struct {
	key, elem, start, end int
}

// keep records that the string at b[start:end] goes to the string of
// requestKeys[key] (element elem of messageIds), for own to make; false
// when kept is full, for the caller to make it at once.
func (d *plainDecoder) keep(key, elem, start, end int) bool {
	if d.nkept == len(d.kept) {
		return false
	}
	d.kept[d.nkept] = keptString{key: key, elem: elem, start: start, end: end}
	d.nkept++
	return true
}

// own sets the strings keep recorded in req, all made in one allocation:
// they live as long as the request's strings together (a receipt keeps
// its ids, and with them the few bytes of the session and the chat).
func (d *plainDecoder) own(req *seenRequest) {
	n := 0
	for _, k := range d.kept[:d.nkept] {
		n += k.end - k.start
	}
	var b strings.Builder
	b.Grow(n)
	for _, k := range d.kept[:d.nkept] {
		b.Write(d.b[k.start:k.end])
	}
	all := b.String()
	for _, k := range d.kept[:d.nkept] {
		n := k.end - k.start
		*req.stringOf(k.key, k.elem) = all[:n]
		all = all[n:]
	}
}

// stringOf returns where the string of requestKeys[key] goes in req: a
// string field, the string of messageId, of element elem of messageIds,
// or of typing_indicator's type (which must have been set), else nil. It
// names the fields itself rather than through requestKeys' functions: a
// call through a func value would make req escape to the heap, an
// allocation per request.
func (req *seenRequest) stringOf(key, elem int) *string {
	switch requestKeys[key].key {
	case "session":
		return &req.Session
	case "instance_id":
		return &req.InstanceID
	case "access_token":
		return &req.AccessToken
	case "chatId":
		return &req.ChatID
	case "to":
		return &req.To
	case "participant":
		return &req.Participant
	case "type":
		return &req.Type
	case "messageId":
		return &req.MessageID.s
	case "messageIds":
		return &req.MessageIDs[elem].s
	case "typing_indicator":
		return &req.TypingIndicator.Type.s
	}
	return nil
}

// field decodes the value of requestKeys[key] into req, as json.Unmarshal
// would (a null leaves a string as it was, and sets the others to their
// zero value). The strings it keeps are set once the body has decoded
// (see own).
func (d *plainDecoder) field(req *seenRequest, key int) bool {
	switch requestKeys[key].key {
	case "messageId":
		return d.optString(&req.MessageID, key, 0)
	case "messageIds":
		return d.optStrings(&req.MessageIDs, key)
	case "async":
		return d.optBool(&req.Async)
	case "typing":
		return d.optBool(&req.Typing)
	case "typing_indicator":
		return d.typingIndicator(&req.TypingIndicator, key)
	}
	s := req.stringOf(key, 0)
	if s == nil {
		return false
	}
	if d.null() {
		return true
	}
	start, end, ok := d.strAt()
	if ok && !d.keep(key, 0, start, end) {
		*s = string(d.b[start:end])
	}
	return ok
}

// optString decodes a string or null into o, the string of
// requestKeys[key] (its element elem, for messageIds).
func (d *plainDecoder) optString(o *optString, key, elem int) bool {
	if d.null() {
		*o = optString{}
		return true
	}
	start, end, ok := d.strAt()
	if ok {
		*o = optString{ok: true}
		if !d.keep(key, elem, start, end) {
			o.s = string(d.b[start:end])
		}
	}
	return ok
}

// optStrings decodes a list of strings (or nulls), or null, into list, the
// value of requestKeys[key].
func (d *plainDecoder) optStrings(list *[]optString, key int) bool {
	if d.null() {
		*list = nil
		return true
	}
	if !d.next('[') {
		return false
	}
	ids := []optString{} // [] is an empty list, not none
	ok := d.elements(']', func() bool {
		var o optString
		if !d.optString(&o, key, len(ids)) {
			return false
		}
		ids = append(ids, o)
		return true
	})
	if !ok {
		return false
	}
	*list = ids
	return true
}

func (d *plainDecoder) optBool(b **bool) bool {
	d.space()
	switch {
	case d.literal("null"):
		*b = nil
	case d.literal("true"):
		*b = new(true)
	case d.literal("false"):
		*b = new(false)
	default:
		return false
	}
	return true
}

// typingIndicator decodes Meta's object as typingIndicator.UnmarshalJSON
// does: its "type" matches exactly, other keys are ignored.
func (d *plainDecoder) typingIndicator(ti **typingIndicator, key int) bool {
	if d.null() {
		*ti = nil
		return true
	}
	if !d.next('{') {
		return false
	}
	v := &typingIndicator{}
	given := false
	ok := d.members(func(name []byte) bool {
		switch {
		case string(name) != "type":
			return d.value(1)
		case given:
			return false
		}
		given = true
		return d.optString(&v.Type, key, 0)
	})
	if !ok {
		return false
	}
	*ti = v
	return true
}

// space skips white space.
func (d *plainDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and c, if c comes next.
func (d *plainDecoder) next(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// elements reads the elements of the array or object whose opening
// bracket was just read, up to close, each with each (in an object, see
// members); false on a missing or extra comma, or when each fails.
func (d *plainDecoder) elements(close byte, each func() bool) bool {
	for first := true; ; first = false {
		more, ok := d.more(close, first)
		switch {
		case !ok:
			return false
		case !more:
			return true
		case !each():
			return false
		}
	}
}

// members reads the members of the object whose '{' was just read, each
// key and its colon, then each(key) for its value.
func (d *plainDecoder) members(each func(key []byte) bool) bool {
	return d.elements('}', func() bool {
		key, ok := d.str()
		return ok && d.next(':') && each(key)
	})
}

// more reads what comes after an element of an array or object (or after
// its opening bracket, when first): close ends it (more false), a comma
// announces another element, as does anything at all after the opening
// bracket (for the caller to read, and to fail on if it is not one). ok is
// false when neither close nor, after an element, a comma comes next: a
// missing or extra comma is a syntax error.
func (d *plainDecoder) more(close byte, first bool) (more, ok bool) {
	if d.next(close) {
		return false, true
	}
	return true, first || d.next(',')
}

// literal skips lit (null, true or false), if it comes next.
func (d *plainDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

func (d *plainDecoder) null() bool {
	d.space()
	return d.literal("null")
}

// str returns the string that comes next, without its quotes; false if
// none does, if it has an escape or a non-ASCII byte, or a control
// character (which JSON does not allow in a string).
func (d *plainDecoder) str() ([]byte, bool) {
	start, end, ok := d.strAt()
	return d.b[start:end], ok
}

// strAt is str, returning where the string is in b: b[start:end].
func (d *plainDecoder) strAt() (start, end int, ok bool) {
	if !d.next('"') {
		return 0, 0, false
	}
	start = d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			return start, d.i - 1, true
		case c == '\\' || c >= utf8.RuneSelf || c < ' ':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// maxPlainDepth is how deep decodePlain follows values nested in the
// objects and arrays of keys that are not ours (depth 0 is the value of
// such a key): no client sends any, and deeper ones (encoding/json takes
// up to 10,000 levels) are left to encoding/json rather than followed by
// recursion.
const maxPlainDepth = 32

// value skips the value that comes next, of any kind, at depth (see
// maxPlainDepth); false if there is none, if it is not valid JSON, or if
// str refuses one of its strings.
func (d *plainDecoder) value(depth int) bool {
	d.space()
	if d.i == len(d.b) {
		return false
	}
	switch c := d.b[d.i]; c {
	case '"':
		_, ok := d.str()
		return ok
	case '{', '[':
		if depth >= maxPlainDepth {
			return false
		}
		d.i++
		inner := func() bool { return d.value(depth + 1) }
		if c == '{' {
			return d.members(func([]byte) bool { return inner() })
		}
		return d.elements(']', inner)
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.number()
}

// number skips the number that comes next, as JSON writes one:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; false if none does.
func (d *plainDecoder) number() bool {
	d.accept('-')
	if !d.accept('0') && d.digits() == 0 {
		return false
	}
	if d.accept('.') && d.digits() == 0 {
		return false
	}
	if d.accept('e') || d.accept('E') {
		if !d.accept('+') {
			d.accept('-')
		}
		if d.digits() == 0 {
			return false
		}
	}
	return true
}

// accept skips c if it comes next, without skipping white space first.
func (d *plainDecoder) accept(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// digits skips the decimal digits that come next and returns how many.
func (d *plainDecoder) digits() int {
	start := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}
