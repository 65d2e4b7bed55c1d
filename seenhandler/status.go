package seenhandler

import (
	"context"
	"net/http"
	"strings"

	"github.com/bluetick/bluetick/session"
)

// The standard paths of the status endpoint.
const (
	// PathWawpStatus is Wawp's status path: GET /v2/session/status?session=NAME
	// (or instance_id=NAME, and access_token=TOKEN for the token).
	PathWawpStatus = "/v2/session/status"
	// PathWAHAStatus is WAHA's status path, a ServeMux pattern:
	// GET /api/sessions/{session}.
	PathWAHAStatus = "/api/sessions/{session}"
)

// Session states of [StatusResponse].Status, in WAHA's words.
const (
	// [StateWorking]: connected and logged in; receipts go out.
	StateWorking = "WORKING"
	// StateStarting: paired, (re)connecting; receipts get 503 meanwhile.
	StateStarting = "STARTING"
	// StateScanQRCode: waiting to be paired by QR code or pair code.
	StateScanQRCode = "SCAN_QR_CODE"
	// StateUnknown: the session cannot tell (it is no session.StatusReporter).
	StateUnknown = "UNKNOWN"
)

// StatusResponse is the body of a 200 answer of [Handler.ServeStatus].
type StatusResponse struct {
	// Success is always true.
	Success bool `json:"success"`
	// Session is the session's name.
	Session string `json:"session"`
	// Status is [StateWorking], StateStarting, StateScanQRCode or
	// StateUnknown.
	Status string `json:"status"`
	// Connected: the connection to WhatsApp is up.
	Connected bool `json:"connected"`
	// LoggedIn: paired and authenticated.
	LoggedIn bool `json:"loggedIn"`
	// JID is the account's phone-number JID, once paired.
	JID string `json:"jid,omitempty"`
}

// serveStatus serves one status request (see ServeStatus).
func (h *Handler) serveStatus(ctx context.Context, _ http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	x.dialect = dialectWAHA
	if strings.HasSuffix(r.URL.Path, PathWawpStatus) {
		x.dialect = dialectWawp
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, &methodError{allow: "GET, HEAD"}
	}
	q := r.URL.Query()
	name, errs := sessionName(h.cfg.pathSession(r), q.Get("session"), q.Get("instance_id"), "session")
	x.asked = name
	ctx, token, err := h.admit(ctx, r, x, q.Get("access_token"))
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	sess, err := h.lookup(ctx, x, name, token)
	if err != nil {
		return nil, err
	}
	resp := &StatusResponse{Success: true, Session: name, Status: StateUnknown}
	reporter, ok := session.As[session.StatusReporter](sess)
	if !ok {
		return resp, nil
	}
	x.op = OpStatus
	st := reporter.Status(ctx)
	x.op = ""
	resp.Connected, resp.LoggedIn, resp.JID = st.Connected, st.LoggedIn, st.JID
	switch {
	case !st.Paired:
		resp.Status = StateScanQRCode
	case st.Connected && st.LoggedIn:
		resp.Status = StateWorking
	default:
		resp.Status = StateStarting
	}
	return resp, nil
}
