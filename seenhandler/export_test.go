package seenhandler

import "net/http"

// The answer bodies, for this package's black-box tests to decode into:
// clients have the OpenAPI document, these tests have the types that
// encode the answers.
type (
	Response          = response
	SentReceipt       = sentReceipt
	Skipped           = skippedID
	Queued            = queuedInfo
	ErrorResponse     = errorResponse
	ErrorBody         = errorBody
	StatusResponse    = statusResponse
	SessionInfo       = sessionInfo
	SessionTimestamps = sessionTimestamps
	Me                = wahaMe
)

// ServeStatus serves the status endpoint, as [Routes] lists it.
func (h *Handler) ServeStatus(w http.ResponseWriter, r *http.Request) {
	h.handle(w, r, EndpointStatus, h.serveStatus)
}

// ServeSessions serves the session list, as [Routes] lists it.
func (h *Handler) ServeSessions(w http.ResponseWriter, r *http.Request) {
	h.handle(w, r, EndpointSessions, h.serveSessions)
}

// PathValue is pathValue, for the tests of WithPathSession.
var PathValue = pathValue

// OpenAPIHandler is openAPIHandler, for the tests of the document's route.
var OpenAPIHandler = openAPIHandler
