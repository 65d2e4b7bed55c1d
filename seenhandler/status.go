package seenhandler

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/bluetick/bluetick/session"
)

// The standard paths of the status endpoint.
const (
	// PathWawpStatus is Wawp's status path: GET /v2/session/status?session=NAME
	// (or instance_id=NAME, or an X-Instance-ID header, and
	// access_token=TOKEN for the token).
	PathWawpStatus = "/v2/session/status"
	// PathWAHAStatus is WAHA's status path, a ServeMux pattern:
	// GET /api/sessions/{session}. Its answer is WAHA's SessionInfo.
	PathWAHAStatus = "/api/sessions/{session}"
	// PathWAHASessions is WAHA's session list: GET /api/sessions, a JSON
	// array of SessionInfo (see [Routes]).
	PathWAHASessions = "/api/sessions"
)

// State is a session's state, in WAHA's words: the "status" of the
// status endpoint's answer (Wawp's path: any of them; WAHA's path: WAHA's
// own, see each).
type State string

// Session states.
const (
	// StateWorking: connected and logged in; receipts go out.
	StateWorking State = "WORKING"
	// StateStarting: paired, (re)connecting; receipts get 503 meanwhile.
	StateStarting State = "STARTING"
	// StateScanQRCode: waiting to be paired by QR code or pair code.
	StateScanQRCode State = "SCAN_QR_CODE"
	// StateConflict: another connection of the same device (another
	// process or tool) replaced the session's (session.Status.Replaced);
	// the session does not reconnect by itself. Not a WAHA state: the WAHA
	// path's SessionInfo says StateFailed then.
	StateConflict State = "CONFLICT"
	// StateFailed is WAHA's state of a session that stopped and needs
	// attention; the WAHA path's SessionInfo reports StateConflict so.
	StateFailed State = "FAILED"
	// StateUnknown: the session cannot tell (it is no session.StatusReporter).
	// Not a WAHA state: the WAHA path's SessionInfo says StateWorking
	// then, as requests do go to the session.
	StateUnknown State = "UNKNOWN"
)

// sessionInfo is WAHA's SessionInfo: the body of a 200 answer of
// the status endpoint on WAHA's path (/api/sessions/{session}), and an
// element of the session list's. It has every property WAHA's
// OpenAPI document requires (name, status, presence, timestamps), each of
// the type it says: clients generated from that document refuse an answer
// without them, or with a null where it says object. Wawp's path answers a
// statusResponse.
type sessionInfo struct {
	// Name is the session's name.
	Name string `json:"name"`
	// Status is one of WAHA's states: [StateWorking], StateStarting,
	// StateScanQRCode or StateFailed (for [StateConflict]; WAHA's STOPPED
	// is never reported).
	Status State `json:"status"`
	// wahaMe is the account, once paired; absent before (WAHA's schema has no
	// null for it).
	Me *wahaMe `json:"me,omitempty"`
	// Presence is WAHA's presence object, always {}: what the account
	// shows its contacts is the session's own policy (the whatsmeow
	// backend's WithPresence), not something a client sets here.
	Presence struct{} `json:"presence"`
	// Timestamps says when the session last acted for the account.
	Timestamps sessionTimestamps `json:"timestamps"`
	// Node is the id of the process that serves the session, when several
	// share it (see session.Status.Node); omitted otherwise.
	Node string `json:"node,omitempty"`
}

// sessionTimestamps is the timestamps member of a sessionInfo.
type sessionTimestamps struct {
	// Activity is when the session last sent a receipt or a typing
	// indicator (session.Status.Activity), in Unix milliseconds as WAHA
	// writes it; null when the session has not since it started, or
	// cannot tell.
	Activity *int64 `json:"activity"`
}

// wahaMe is the account of a session, as WAHA writes it.
type wahaMe struct {
	// ID is the account's id in WAHA's form, e.g. "15551234567@c.us".
	ID string `json:"id"`
	// PushName is the account's display name; "" when unknown.
	PushName string `json:"pushName"`
}

// statusResponse is the body of a 200 answer of the status endpoint on
// Wawp's path.
type statusResponse struct {
	// Success is always true.
	Success bool `json:"success"`
	// Session is the session's name.
	Session string `json:"session"`
	// Status is [StateWorking], StateStarting, StateScanQRCode,
	// StateConflict or StateUnknown.
	Status State `json:"status"`
	// Connected: the connection to WhatsApp is up.
	Connected bool `json:"connected"`
	// LoggedIn: paired and authenticated.
	LoggedIn bool `json:"loggedIn"`
	// JID is the account's phone-number JID, once paired.
	JID string `json:"jid,omitempty"`
	// Node is the id of the process that serves the session, when several
	// share it (see session.Status.Node); omitted otherwise.
	Node string `json:"node,omitempty"`
	// Queue is the session's asynchronous receipts, with [WithLater];
	// absent otherwise, or when the queue cannot be read (logged).
	Queue *QueueStatus `json:"queue,omitempty"`
}

// QueueStatus is a session's asynchronous receipts in the status answer:
// as its [Later] counts them (seenhandler/queue's Worker: across restarts
// with a durable queue).
type QueueStatus struct {
	// Pending receipts wait for their delay or a retry, or are being sent;
	// Sent and Failed left the queue.
	Pending int64 `json:"pending"`
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	// OldestPendingSeconds is the age of the oldest pending receipt, from
	// its acceptance; 0 when none is pending.
	OldestPendingSeconds float64 `json:"oldestPendingSeconds"`
}

// serveStatus answers one GET (or HEAD) request for a session's state
// ([Routes] lists it at [PathWawpStatus] and PathWAHAStatus),
// authenticated like ServeHTTP: a statusResponse {"success","session",
// "status","connected","loggedIn","jid"}, or on WAHA's path
// (/api/sessions/{session}) WAHA's SessionInfo {"name","status","me",
// "presence","timestamps"}. The session comes from the URL (see
// [WithPathSession]), else the query's session or instance_id or, on Wawp's
// path, an X-Instance-ID header, which must agree.
func (h *Handler) serveStatus(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	x.dialect = dialectWAHA
	if strings.HasSuffix(r.URL.Path, PathWawpStatus) {
		x.dialect = dialectWawp
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, &methodError{allow: "GET, HEAD"}
	}
	q := r.URL.Query()
	src := sessionSources{path: h.cfg.pathSession(r), session: q.Get("session"), instance: q.Get("instance_id"), field: "session", single: h.single}
	if x.dialect == dialectWawp {
		src.header = r.Header.Get(headerInstanceID) // where Wawp's SDK names the instance
	}
	name, errs := sessionName(src)
	x.asked = name
	var pre preauthed
	if len(errs) == 0 && h.cfg.forwarder != nil {
		// Authenticated before it may go to another process (see
		// serveSeen).
		var err error
		if pre, err = h.authenticate(ctx, r, q.Get("access_token"), name, pre); err != nil {
			return nil, err
		}
		if done, err := h.forward(ctx, w, r, x, name, nil); done || err != nil {
			return forwarded{}, err
		}
	}
	ctx, token, err := h.admit(ctx, r, x, q.Get("access_token"), pre)
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
	state, st := h.state(ctx, x, sess)
	if wahaSessionPath(r) {
		return newSessionInfo(name, state, st), nil
	}
	return &statusResponse{Success: true, Session: name, Status: state,
		Connected: st.Connected, LoggedIn: st.LoggedIn, JID: st.JID, Node: st.Node, Queue: h.queueStatus(ctx, name)}, nil
}

// wahaSessionPath reports whether r came by WAHA's session path
// (/api/sessions/{session}, under any prefix), whose answer is WAHA's
// SessionInfo.
func wahaSessionPath(r *http.Request) bool {
	return strings.Contains(r.URL.Path, PathWAHASessions+"/")
}

// state asks sess for its state: one of the State constants, and what the
// session reported (zero when it cannot tell).
func (h *Handler) state(ctx context.Context, x *exchange, sess session.Session) (State, session.Status) {
	reporter, ok := session.As[session.StatusReporter](sess)
	if !ok {
		return StateUnknown, session.Status{}
	}
	x.op = OpStatus
	st := reporter.Status(ctx)
	x.op = ""
	switch {
	case !st.Paired:
		return StateScanQRCode, st
	case st.Connected && st.LoggedIn:
		return StateWorking, st
	case st.Replaced:
		return StateConflict, st
	}
	return StateStarting, st
}

// sessionInfo is WAHA's view of a session's state.
func newSessionInfo(name string, state State, st session.Status) *sessionInfo {
	info := &sessionInfo{Name: name, Status: state, Node: st.Node}
	switch state {
	case StateUnknown:
		info.Status = StateWorking
	case StateConflict:
		info.Status = StateFailed
	}
	if !st.Activity.IsZero() {
		ms := st.Activity.UnixMilli()
		info.Timestamps.Activity = &ms
	}
	if user, server, ok := strings.Cut(st.JID, "@"); ok && st.Paired {
		if server == "s.whatsapp.net" {
			server = "c.us"
		}
		info.Me = &wahaMe{ID: user + "@" + server}
	}
	return info
}

// serveSessions answers WAHA's GET /api/sessions ([Routes] lists it at
// [PathWAHASessions]): a JSON array of WAHA's SessionInfo, one per session
// the registry lists (see session.Lister) that the request's token may use,
// sorted by name. A registry that cannot list its sessions gets 501.
func (h *Handler) serveSessions(ctx context.Context, _ http.ResponseWriter, r *http.Request, x *exchange) (any, error) {
	x.dialect = dialectWAHA
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, &methodError{allow: "GET, HEAD"}
	}
	bodyToken := r.URL.Query().Get("access_token")
	ctx, _, err := h.admit(ctx, r, x, bodyToken, preauthed{}) // the token alone: no session is named
	if err != nil {
		return nil, err
	}
	lister, ok := h.reg.(session.Lister)
	if !ok {
		return nil, errListUnsupported
	}
	x.op = OpLookup
	names, err := lister.ListSessions(ctx)
	x.op = ""
	if errors.Is(err, errors.ErrUnsupported) {
		return nil, errListUnsupported
	}
	if err != nil {
		return nil, backendErr(OpLookup, err)
	}
	infos := []*sessionInfo{}
	for _, name := range names {
		if !h.cfg.noAuth {
			_, err := h.cfg.auth.Authenticate(ctx, Credentials{Token: requestToken(r, bodyToken), Session: name})
			if errors.Is(err, ErrForbidden) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		x.op = OpLookup
		sess, err := h.reg.Lookup(ctx, name)
		x.op = ""
		if errors.Is(err, session.ErrSessionNotFound) || (err == nil && sess == nil) {
			continue // gone since it was listed
		}
		if err != nil {
			return nil, backendErr(OpLookup, err)
		}
		state, st := h.state(ctx, x, sess)
		infos = append(infos, newSessionInfo(name, state, st))
	}
	return infos, nil
}
