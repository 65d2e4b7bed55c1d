package seenhandler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/validate"
)

// This file is the one place where errors become HTTP statuses.

// Code is an error code: the "code" of an error answer's "error" member,
// stable and machine-readable, each with its HTTP status. It is also the
// Code of [RequestInfo] and [BackendErrorInfo], and the Reason and
// RetryReason of an [Attempt].
type Code string

// Error codes, with their statuses.
const (
	CodeInvalidJSON          Code = "invalid_json"           // 400
	CodeValidationFailed     Code = "validation_failed"      // 400
	CodeInvalidReceipt       Code = "invalid_receipt"        // 400
	CodeUnauthorized         Code = "unauthorized"           // 401
	CodeRequestTimeout       Code = "request_timeout"        // 408
	CodeForbidden            Code = "forbidden"              // 403
	CodeSessionNotFound      Code = "session_not_found"      // 404
	CodeMessageNotFound      Code = "message_not_found"      // 404
	CodeMethodNotAllowed     Code = "method_not_allowed"     // 405
	CodeBodyTooLarge         Code = "body_too_large"         // 413
	CodeUnsupportedMediaType Code = "unsupported_media_type" // 415
	CodeRateLimited          Code = "rate_limited"           // 429
	CodeClientClosedRequest  Code = "client_closed_request"  // 499
	CodeInternal             Code = "internal"               // 500
	CodeNotImplemented       Code = "not_implemented"        // 501
	CodeSessionNotConnected  Code = "session_not_connected"  // 503
	CodeSessionNotLoggedIn   Code = "session_not_logged_in"  // 503
	CodeQueueFull            Code = "queue_full"             // 503
	CodeShuttingDown         Code = "shutting_down"          // 503
	CodeStorageFull          Code = "storage_full"           // 503
	CodeTimeout              Code = "timeout"                // 504
)

// maxReportedFields is the most field errors an answer lists; the rest
// are counted (errorBody.FieldsTotal), so that a request with thousands of
// bad ids does not get an answer many times its size.
const maxReportedFields = 20

// statusClientClosedRequest is nginx's status for a client that went away;
// the client never sees it, logs do.
const statusClientClosedRequest = 499

// errListUnsupported: the registry cannot list its sessions.
var errListUnsupported = fmt.Errorf("seenhandler: the registry is no session.Lister: %w", errors.ErrUnsupported)

// errPanic wraps a panic recovered from a backend or an [Authenticator].
var errPanic = errors.New("panic")

// problem is an error as the client sees it.
type problem struct {
	status     int
	code       Code
	message    string
	fields     []validate.FieldError
	total      int           // of fields, when fields lists only the first ones
	retryAfter bool          // set Retry-After
	after      time.Duration // its value, when not the configured one
	allow      string        // the Allow header of a 405
}

// classify maps err to what the client is told. Only texts written by this
// package reach the client; a backend's error text goes to the log alone.
func classify(err error) problem {
	var (
		method   *methodError
		limited  *rateLimitedError
		jsonErr  *jsonError
		fieldErr validate.Errors
		tooLarge *http.MaxBytesError
		body     *bodyError
	)
	switch {
	case errors.As(err, &method):
		return problem{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, message: "use " + method.allow, allow: method.allow}
	case errors.Is(err, errListUnsupported):
		return problem{status: http.StatusNotImplemented, code: CodeNotImplemented, message: "this server cannot list its sessions"}
	case errors.Is(err, errUnsupportedType):
		return problem{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType, message: err.Error()}
	case errors.As(err, &tooLarge):
		return problem{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
			message: fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit)}
	case errors.As(err, &body) && body.timeout:
		return problem{status: http.StatusRequestTimeout, code: CodeRequestTimeout,
			message: "the body did not arrive in time; send it at once"}
	case errors.As(err, &body):
		return problem{status: http.StatusBadRequest, code: CodeInvalidJSON,
			message: "the body ended before it was complete (connection closed or cut off)"}
	case errors.As(err, &jsonErr):
		p := problem{status: http.StatusBadRequest, code: CodeInvalidJSON, message: jsonErr.msg}
		if jsonErr.field != "" {
			p.fields = []validate.FieldError{{Field: jsonErr.field, Rule: "type", Message: jsonErr.msg}}
		}
		return p
	case errors.As(err, &limited):
		return problem{status: http.StatusTooManyRequests, code: CodeRateLimited,
			message:    "too many requests for this " + limited.what + "; retry after the Retry-After seconds",
			retryAfter: true, after: limited.retryAfter}
	case errors.As(err, &fieldErr) && len(fieldErr) > maxReportedFields:
		return problem{status: http.StatusBadRequest, code: CodeValidationFailed,
			message: fmt.Sprintf("the request has %d invalid fields, the first %d: %s", len(fieldErr), maxReportedFields,
				fieldErr[:maxReportedFields].Error()),
			fields: fieldErr[:maxReportedFields:maxReportedFields], total: len(fieldErr)}
	case errors.As(err, &fieldErr):
		return problem{status: http.StatusBadRequest, code: CodeValidationFailed,
			message: "the request has invalid fields: " + fieldErr.Error(), fields: fieldErr}
	case errors.Is(err, ErrUnauthorized):
		return problem{status: http.StatusUnauthorized, code: CodeUnauthorized,
			message: "a valid API token is required (Authorization: Bearer <token>, X-Api-Key or access_token)"}
	case errors.Is(err, ErrForbidden):
		return problem{status: http.StatusForbidden, code: CodeForbidden, message: "this token may not use this session"}
	case errors.Is(err, session.ErrSessionNotFound):
		return problem{status: http.StatusNotFound, code: CodeSessionNotFound, message: "no session has this name"}
	case errors.Is(err, session.ErrMessageNotFound):
		return problem{status: http.StatusNotFound, code: CodeMessageNotFound, message: "the session does not know this message"}
	case errors.Is(err, session.ErrInvalidReceipt):
		return problem{status: http.StatusBadRequest, code: CodeInvalidReceipt,
			message: "WhatsApp cannot take this receipt as asked; nothing was sent"}
	case errors.Is(err, session.ErrNotReady): // before ErrNotConnected, which it wraps
		return backendRetryAfter(err, problem{status: http.StatusServiceUnavailable, code: CodeSessionNotConnected,
			message:    "the session is connected to WhatsApp and waits for it (the account's read-receipt setting after connecting, or its name after pairing) before it can send this receipt; nothing was sent; try again shortly",
			retryAfter: true})
	case errors.Is(err, session.ErrNotConnected):
		return backendRetryAfter(err, problem{status: http.StatusServiceUnavailable, code: CodeSessionNotConnected,
			message: "the session is not connected to WhatsApp; try again later", retryAfter: true})
	case errors.Is(err, session.ErrNotLoggedIn):
		return backendRetryAfter(err, problem{status: http.StatusServiceUnavailable, code: CodeSessionNotLoggedIn,
			message: "the session is not logged in to WhatsApp; pair it again"})
	case errors.Is(err, ErrQueueFull):
		message := "too many receipts wait to be sent; nothing of this request was queued; retry later"
		switch {
		case errors.Is(err, ErrSessionQueueFull):
			message = "too many receipts wait to be sent for this session; nothing of this request was queued; retry later"
		case errors.Is(err, ErrTokenQueueFull):
			message = "too many receipts wait to be sent for this token; nothing of this request was queued; retry later"
		}
		return problem{status: http.StatusServiceUnavailable, code: CodeQueueFull, message: message, retryAfter: true}
	case errors.Is(err, session.ErrStorageFull):
		return problem{status: http.StatusServiceUnavailable, code: CodeStorageFull,
			message: "the server's storage is full; nothing of this request was stored; retry later", retryAfter: true}
	case errors.Is(err, errShuttingDown):
		return problem{status: http.StatusServiceUnavailable, code: CodeShuttingDown,
			message: "the server is shutting down; retry later", retryAfter: true}
	case errors.Is(err, context.DeadlineExceeded):
		return problem{status: http.StatusGatewayTimeout, code: CodeTimeout, message: "WhatsApp did not answer in time"}
	case errors.Is(err, context.Canceled):
		return problem{status: statusClientClosedRequest, code: CodeClientClosedRequest, message: "the client closed the request"}
	}
	return problem{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error; the server log has the details"}
}

// backendRetryAfter gives p the Retry-After the backend put on err
// (session.RetryAfter), when it did: e.g. the time to the next attempt to
// reach WhatsApp.
func backendRetryAfter(err error, p problem) problem {
	if d, ok := session.RetryAfter(err); ok {
		p.retryAfter, p.after = true, d
	}
	return p
}

// WriteError answers err in the handler's JSON error format (an
// {"success":false,"message","error":{"code",…}}, as the OpenAPI document
// says) with the status of its Code: for a middleware in front
// of a [Handler] that refuses requests itself, e.g. with an error wrapping
// [ErrUnauthorized] or [ErrForbidden]. As in the handler's own answers,
// only texts of this package reach the client, never err's own.
func WriteError(w http.ResponseWriter, err error) {
	writeError(w, err, nil, DefaultRetryAfter)
}

// writeError answers with err's problem; sent lists receipts that went out
// before the failure, retryAfter is the Retry-After of a 503.
func writeError(w http.ResponseWriter, err error, sent []sentReceipt, retryAfter time.Duration) problem {
	p := classify(err)
	switch {
	case p.allow != "":
		w.Header().Set("Allow", p.allow)
	case p.retryAfter:
		after := retryAfter
		if p.after > 0 {
			after = p.after
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((after+time.Second-1)/time.Second))))
	}
	if p.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bluetick"`)
	}
	fields := p.fields
	if fields == nil {
		fields = []validate.FieldError{}
	}
	writeJSON(w, p.status, errorResponse{
		Message:  p.message,
		Error:    errorBody{Code: p.code, Message: p.message, Fields: fields, FieldsTotal: p.total},
		Receipts: sent,
	}, nil)
	return p
}

// levelFor is the log level of a failed request: the client's mistakes
// (4xx) are not the operator's news.
func levelFor(p problem) slog.Level {
	if p.status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
