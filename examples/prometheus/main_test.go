package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bluetick/bluetick/session"
	"github.com/bluetick/bluetick/session/sessiontest"
)

func TestMetrics(t *testing.T) {
	fake := sessiontest.New()
	reg := prometheus.NewRegistry()
	mux, err := newMux(fake, "tok", reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()
	post := func(path, body string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A1 arrived 90 s ago, as the session knows: its time to view is observed.
	fake.AddMessage("demo", session.Message{Chat: "15551234567@s.whatsapp.net", ID: "A1", Sender: "15551234567@s.whatsapp.net",
		Timestamp: time.Now().Add(-90 * time.Second)})
	post("/api/sendSeen", `{"session":"demo","chatId":"15551234567","messageIds":["A1","A2","true_15551234567@c.us_A3"]}`)
	post("/sendSeen", `{"session":"demo","to":"15551234567","messageId":"A4"}`)
	post("/sendSeen", `{"session":"nobody","to":"15551234567","messageId":"A5"}`)
	post("/api/sendSeen", `{"session":"demo","chatId":"15551234567","messageIds":["Q1"],"async":true}`) // queued for ~1 s
	fake.Inject(sessiontest.Fault{Err: errors.Join(session.ErrNotConnected, errors.New("down"))})
	post("/v2/send/seen", `{"instance_id":"demo","chatId":"15551234567","messageIds":["A6"]}`)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`bluetick_requests_total{code="ok",dialect="waha",endpoint="seen",session="demo"} 2`,
		`bluetick_requests_total{code="ok",dialect="wasend",endpoint="seen",session="demo"} 1`,
		// A session that does not exist mints no label value.
		`bluetick_requests_total{code="session_not_found",dialect="wasend",endpoint="seen",session=""} 1`,
		`bluetick_requests_total{code="session_not_connected",dialect="wawp",endpoint="seen",session="demo"} 1`,
		`bluetick_receipts_sent_total{session="demo"} 2`,
		`bluetick_time_to_view_seconds_bucket{auto="false",session="demo",le="60"} 0`,
		`bluetick_time_to_view_seconds_bucket{auto="false",session="demo",le="120"} 1`,
		`bluetick_time_to_view_seconds_count{auto="false",session="demo"} 1`,
		`bluetick_messages_sent_total{session="demo"} 3`,
		`bluetick_messages_skipped_total{session="demo"} 1`,
		`bluetick_backend_errors_total{code="session_not_connected",op="send",session="demo"} 1`,
		`bluetick_request_duration_seconds_count{dialect="wasend",endpoint="seen"} 2`,
		`bluetick_async_queue_depth 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "bluetick_requests_total"); err != nil || n != 4 {
		t.Errorf("bluetick_requests_total series = %d, %v; want 4 (the async one shares the waha series)", n, err)
	}
}
