package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postgresDB creates a database of its own for t on the server of
// $BLUETICK_TEST_POSTGRES (skipped without one, failed with CI=true) and
// drops it when t ends.
func postgresDB(t *testing.T) string {
	t.Helper()
	const envPG = "BLUETICK_TEST_POSTGRES"
	admin := os.Getenv(envPG)
	if admin == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(envPG + " is not set, and CI=true")
		}
		t.Skip(envPG + " is not set: PostgreSQL tests skipped")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	name := "bluetick_test_" + strings.ToLower(rand.Text())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func (p *proc) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	return do(t, req)
}

func (p *proc) node(t *testing.T, session string) string {
	t.Helper()
	status, body := p.get(t, "/api/sessions/"+session)
	var info struct{ Node string }
	if status == 503 {
		return "" // its owner is out of reach: nobody serves it now
	}
	if status != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("status of %s: %d %s", session, status, body)
	}
	return info.Node
}

// Two examples/server processes on one Postgres
// database with one stored device: exactly one owns it, both name the same
// owner, a request to either gets the owner's answer, and when the owner
// is killed (SIGKILL) the other takes over within the bound.
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server twice")
	}
	dsn := postgresDB(t)
	storeDeviceIn(t, "postgres", dsn, "15550000001")
	env := []string{tokenEnv + "=s3cret", clusterSecretEnv + "=cluster-s3cret"}
	nodes := map[string]*proc{
		"node-1": startProcEnv(t, env, "-db", dsn, "-node-id", "node-1", "-session-rate", "0"),
		"node-2": startProcEnv(t, env, "-db", dsn, "-node-id", "node-2", "-session-rate", "0"),
	}
	const name = "15550000001"
	var owner string
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, b := nodes["node-1"].node(t, name), nodes["node-2"].node(t, name)
		if a != "" && a == b {
			owner = a
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agreed owner: node-1 says %q, node-2 says %q", a, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	other := "node-1"
	if owner == "node-1" {
		other = "node-2"
	}
	// Either node answers with the owner's answer: its client cannot reach
	// WhatsApp here, so 503 session_not_connected, the same bytes.
	body := `{"session":"` + name + `","chatId":"15551234567","messageIds":["3EB0A"]}`
	var answers []string
	for _, id := range []string{owner, other} {
		req, _ := http.NewRequest(http.MethodPost, nodes[id].url+"/api/sendSeen", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", "s3cret")
		status, b := do(t, req)
		answers = append(answers, strconv.Itoa(status)+" "+string(b))
	}
	if answers[0] != answers[1] || !strings.HasPrefix(answers[0], "503 ") {
		t.Errorf("answers: at the owner %s, at the other %s", answers[0], answers[1])
	}
	// The list comes from the node's view of the cluster, up to a renewal
	// period (1 s) old.
	listed := time.Now().Add(5 * time.Second)
	for {
		status, list := nodes[other].get(t, "/api/sessions")
		if status == 200 && strings.Contains(string(list), `"node":"`+owner+`"`) {
			break
		}
		if time.Now().After(listed) {
			t.Fatalf("session list at %s: %d %s", other, status, list)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGKILL the owner: the other takes the session within the bound
	// (lease 8 s + a renewal round + connecting).
	if err := nodes[owner].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for nodes[other].node(t, name) != other {
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("%s did not take the session within 15 s of %s's death", other, owner)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("takeover after SIGKILL: %v", time.Since(killed).Round(time.Millisecond))
}
