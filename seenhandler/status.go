package seenhandler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
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

// Session states of StatusResponse.Status, in WAHA's words.
const (
	// StateWorking: connected and logged in; receipts go out.
	StateWorking = "WORKING"
	// StateStarting: paired, (re)connecting; receipts get 503 meanwhile.
	StateStarting = "STARTING"
	// StateScanQRCode: waiting to be paired by QR code or pair code.
	StateScanQRCode = "SCAN_QR_CODE"
	// StateUnknown: the session cannot tell (it is no session.StatusReporter).
	StateUnknown = "UNKNOWN"
)

// StatusResponse is the body of a 200 answer of a StatusHandler.
type StatusResponse struct {
	// Success is always true.
	Success bool `json:"success"`
	// Session is the session's name.
	Session string `json:"session"`
	// Status is StateWorking, StateStarting, StateScanQRCode or
	// StateUnknown.
	Status string `json:"status"`
	// Connected: the connection to WhatsApp is up.
	Connected bool `json:"connected"`
	// LoggedIn: paired and authenticated.
	LoggedIn bool `json:"loggedIn"`
	// JID is the account's phone-number JID, once paired.
	JID string `json:"jid,omitempty"`
}

// StatusHandler answers GET requests for a session's state, authenticated
// like Handler. The session comes from WithPathSession's extractor, else
// the ServeMux wildcard {session}, else the query's session or instance_id.
// It is safe for concurrent use.
type StatusHandler struct {
	reg session.Registry
	cfg config
}

// NewStatusHandler returns a StatusHandler over reg. It takes the options of
// New (those about bodies and ids have no effect).
func NewStatusHandler(reg session.Registry, opts ...Option) (*StatusHandler, error) {
	cfg, err := newConfig(reg, opts)
	if err != nil {
		return nil, err
	}
	return &StatusHandler{reg: reg, cfg: cfg}, nil
}

// MountStatus registers sh on mux at PathWawpStatus and PathWAHAStatus.
func MountStatus(mux *http.ServeMux, sh *StatusHandler) {
	mux.Handle(PathWawpStatus, sh)
	mux.Handle(PathWAHAStatus, sh)
}

// ServeHTTP answers one status request.
func (sh *StatusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := RequestInfo{Endpoint: EndpointStatus, Dialect: dialectWAHA, Status: http.StatusOK}
	if strings.HasSuffix(r.URL.Path, PathWawpStatus) {
		info.Dialect = dialectWawp
	}
	resp, err := sh.serve(r, &info)
	if err != nil {
		p := writeError(w, err, nil, sh.cfg)
		sh.cfg.logger.LogAttrs(r.Context(), levelFor(p), "status request failed",
			slog.String("session", info.Session), slog.Int("status", p.status), slog.String("code", p.code),
			slog.String("error", err.Error()), slog.Duration("took", time.Since(start)))
		sh.cfg.observeBackend(r.Context(), info.Session, err)
		info.Status, info.Code = p.status, p.code
	} else {
		writeJSON(w, http.StatusOK, resp)
	}
	if sh.cfg.observer != nil {
		info.Latency = time.Since(start)
		sh.cfg.observer.RequestDone(r.Context(), info)
	}
}

func (sh *StatusHandler) serve(r *http.Request, info *RequestInfo) (resp *StatusResponse, err error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, &methodError{allow: http.MethodGet}
	}
	q := r.URL.Query()
	name := ""
	if sh.cfg.pathSession != nil {
		name = sh.cfg.pathSession(r)
	}
	for _, v := range []string{r.PathValue("session"), q.Get("session"), q.Get("instance_id")} {
		if name == "" {
			name = v
		}
	}
	info.Session = name
	if !sh.cfg.noAuth {
		cred := Credentials{Token: requestToken(r, q.Get("access_token")), Session: name}
		if err := safeAuth(r.Context(), sh.cfg.auth, cred); err != nil {
			return nil, err
		}
	}
	if name == "" {
		return nil, validate.Errors{{Field: "session", Rule: "required", Message: "is required (query session or instance_id, or the path)"}}
	}
	ctx, cancel := context.WithTimeout(r.Context(), sh.cfg.timeout)
	defer cancel()
	sess, err := safeLookup(ctx, sh.reg, name)
	if err != nil {
		return nil, backendErr(OpLookup, err)
	}
	resp = &StatusResponse{Success: true, Session: name, Status: StateUnknown}
	reporter, ok := session.As[session.StatusReporter](sess)
	if !ok {
		return resp, nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = backendErr(OpStatus, fmt.Errorf("%w: status reporter: %v", errPanic, v))
		}
	}()
	st := reporter.Status(ctx)
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
