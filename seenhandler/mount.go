package seenhandler

import "net/http"

// The standard paths of the three dialects.
const (
	// PathWasend is Wasend's path: {"session","to","messageId"} with
	// Authorization: Bearer.
	PathWasend = "/sendSeen"
	// PathWawp is Wawp's path: {"instance_id","access_token","chatId",
	// "messageIds","participant"}.
	PathWawp = "/v2/send/seen"
	// PathWAHA is WAHA's path: {"session","chatId","messageIds",
	// "participant"} with X-Api-Key.
	PathWAHA = "/api/sendSeen"
)

// Mount registers h on mux at PathWasend, PathWawp and PathWAHA, and the
// OpenAPI document at the path given to WithOpenAPI, if any. The seen
// patterns carry no method, so that h itself answers other methods with a
// JSON 405. To serve under a prefix, mount on a mux behind
// http.StripPrefix.
func Mount(mux *http.ServeMux, h *Handler) {
	for _, p := range []string{PathWasend, PathWawp, PathWAHA} {
		mux.Handle(p, h)
	}
	if h.cfg.openAPIPath != "" {
		mux.Handle("GET "+h.cfg.openAPIPath, OpenAPIHandler())
	}
}
