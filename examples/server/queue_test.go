package main

// Nothing accepted is lost — the durable queue across a kill -9,
// the graceful stop with a request held open, the second signal, and
// sessions that are down.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluetick/bluetick/seenhandler"
)

// sentIDs returns the message ids of the "receipt sent" lines that -v
// printed on stdout, with how often each was sent.
func sentIDs(t *testing.T, stdout string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var line struct {
			Msg        string   `json:"msg"`
			MessageIDs []string `json:"message_ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if line.Msg == "receipt sent" {
			for _, id := range line.MessageIDs {
				ids[id]++
			}
		}
	}
	return ids
}

// queueOf reads a session's queue from the Wawp status endpoint of the
// server at base.
func queueOf(t *testing.T, base, name string) seenhandler.QueueStatus {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v2/session/status?session="+name+"&access_token="+demoToken, nil)
	status, body := do(t, req)
	var st struct{ Queue *seenhandler.QueueStatus }
	if err := json.Unmarshal(body, &st); status != http.StatusOK || err != nil || st.Queue == nil {
		t.Fatalf("status of %s: %d %s", name, status, body)
	}
	return *st.Queue
}

// waitQueue polls the status endpoint until cond holds of the session's
// queue (the worker runs on its own clock), for at most a minute.
func waitQueue(t *testing.T, base, name string, cond func(seenhandler.QueueStatus) bool) seenhandler.QueueStatus {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		q := queueOf(t, base, name)
		if cond(q) {
			return q
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue of %s is still %+v after a minute", name, q)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postAsync sends n asynchronous requests to base, one id each (prefix0…),
// from 8 clients at once, and requires 202 for each.
func postAsync(t *testing.T, base, name, prefix string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				body := fmt.Sprintf(`{"session":%q,"to":"15551234567","messageId":"%s%d"}`, name, prefix, i)
				req, _ := http.NewRequest(http.MethodPost, base+seenhandler.PathWasend, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+demoToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// buildServer builds this command once per test binary, into a directory
// removed by TestMain's end (the OS's temp directory, named per process).
func buildServer(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bluetick-server-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is the command under test run as a process of its own.
type proc struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *syncBuffer
	exited         chan struct{}
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, args...)
}

// startProcEnv is startProc with env added to the environment. The
// process's whatsmeow clients reach no network: HTTPS_PROXY points them at
// a closed loopback port.
func startProcEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(buildServer(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = append(os.Environ(), tokenEnv+"=", dbEnv+"=", "HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=", "no_proxy=")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url = m[1]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("the server exited before listening; stderr:\n%s", p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line on stderr:\n%s", "listening on", p.stderr)
		}
	}
}

// signal sends sig and, when wait, waits for the process to exit.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not exit after %v; stderr:\n%s", sig, p.stderr)
	}
}

// 200 receipts answered 202 survive a kill -9 in the
// -db file; the next start sends each of them once, and the counts agree.
func TestCrashKeepsQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server as a process")
	}
	const n = 200
	db := filepath.Join(t.TempDir(), "bluetick.db")
	first := startProc(t, "-demo", "-async", "-v", "-db", db, "-async-min", "1h", "-async-max", "1h")
	postAsync(t, first.url, "demo", "K", n)
	if q := queueOf(t, first.url, "demo"); q.Pending != n || q.Sent != 0 {
		t.Fatalf("before the crash: %+v", q)
	}
	first.signal(t, syscall.SIGKILL)
	if ids := sentIDs(t, first.stdout.String()); len(ids) != 0 {
		t.Fatalf("sent before the crash: %v", ids)
	}

	second := startProc(t, "-demo", "-async", "-v", "-db", db, "-async-min", "1ms", "-async-max", "5ms", "-async-pace", "1ms")
	q := waitQueue(t, second.url, "demo", func(q seenhandler.QueueStatus) bool { return q.Pending == 0 })
	if q != (seenhandler.QueueStatus{Sent: n}) {
		t.Errorf("after the restart: %+v, want %d sent", q, n)
	}
	second.signal(t, syscall.SIGTERM)
	if err := second.cmd.ProcessState.ExitCode(); err != 0 {
		t.Errorf("exit status %d; stderr:\n%s", err, second.stderr)
	}
	if want := fmt.Sprintf("%d accepted, %d sent, 0 failed, 0 pending", n, n); !strings.Contains(second.stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, second.stderr)
	}
	ids := sentIDs(t, second.stdout.String())
	for i := range n {
		if c := ids[fmt.Sprint("K", i)]; c != 1 {
			t.Errorf("K%d sent %d times, want once", i, c)
		}
	}
	if len(ids) != n {
		t.Errorf("%d ids sent, want %d", len(ids), n)
	}
}

// holdRequest opens a connection to base and sends a request whose body
// never ends: the server waits for it until -shutdown-timeout.
func holdRequest(t *testing.T, base string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "POST /sendSeen HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"session\":"); err != nil {
		t.Fatal(err)
	}
	// Whether the server has read the headers yet (the handler then waits
	// for the body) or not (the connection is new, under 5 s old),
	// http.Server.Shutdown waits for the connection until its deadline —
	// once the server has accepted it: a request answered on a connection
	// dialed after it shows that (the listener accepts in order). On a
	// connection of its own: a pooled one from an earlier request showed
	// nothing, and under load the stop came before the accept.
	c2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c2.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// A client holding a request open past the
// shutdown budget does not prevent the flush; the counts are printed.
func TestGracefulStopWithHeldRequest(t *testing.T) {
	s := start(t, nil, "-async", "-async-min", "1h", "-async-max", "1h", "-async-pace", "1ms", "-shutdown-timeout", "300ms")
	postAsync(t, s.url, "demo", "G", 3)
	holdRequest(t, s.url)
	out := s.stop(t) // run returns nil: nothing accepted was lost
	for _, want := range []string{"requests still in flight after 300ms", "3 accepted, 3 sent, 0 failed, 0 pending"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
}

// With a
// durable queue the stop waits for a held request; a second signal cuts
// it short, the queue keeps its receipts, and the next start sends them.
func TestSecondSignalKeepsQueue(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bluetick.db")
	s := start(t, nil, "-async", "-v", "-db", db, "-async-min", "1h", "-async-max", "1h", "-shutdown-timeout", "1h")
	postAsync(t, s.url, "demo", "S", 5)
	holdRequest(t, s.url)
	s.stopped = true
	s.cancel() // the first signal: the stop waits for the held request
	select {
	case s.term <- syscall.SIGTERM: // taken once the stop began
	case <-time.After(10 * time.Second):
		t.Fatal("the stop does not listen for a second signal")
	}
	select {
	case err := <-s.done:
		if err != errCutShort {
			t.Errorf("run = %v, want %v", err, errCutShort)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the second signal did not stop the server; stderr:\n%s", s.stderr)
	}
	if out := s.stderr.String(); !strings.Contains(out, "5 accepted, 0 sent, 0 failed, 5 pending (kept in the store") {
		t.Errorf("stderr:\n%s", out)
	}

	next := start(t, nil, "-async", "-v", "-db", db, "-async-min", "1ms", "-async-max", "1ms", "-async-pace", "1ms")
	waitQueue(t, next.url, "demo", func(q seenhandler.QueueStatus) bool { return q.Pending == 0 })
	if out := next.stop(t); !strings.Contains(out, "5 accepted, 5 sent, 0 failed, 0 pending") {
		t.Errorf("stderr after the restart:\n%s", out)
	}
	if ids := sentIDs(t, next.stdout.String()); len(ids) != 5 {
		t.Errorf("sent after the restart: %v", ids)
	}
}

// A -demo -offline session behaves like a real
// one that is down: an asynchronous request gets a 202 that says why, and
// its receipt goes out once the session is back.
func TestAsyncOfflineSessionComesBack(t *testing.T) {
	s := start(t, nil, "-sessions", "demo,down", "-offline", "down:1s", "-async", "-v", "-async-min", "10ms", "-async-max", "10ms")
	status, body := s.post(t, seenhandler.PathWasend, `{"session":"down","to":"15551234567","messageId":"B1"}`, "Authorization", "Bearer "+demoToken)
	var resp struct {
		Queued *struct{ Reason seenhandler.Code }
	}
	if err := json.Unmarshal(body, &resp); err != nil || status != http.StatusAccepted || resp.Queued == nil ||
		resp.Queued.Reason != seenhandler.CodeSessionNotConnected {
		t.Fatalf("%d %s", status, body)
	}
	// The first attempt (10 ms) fails; the retry 2 s later finds it back.
	q := waitQueue(t, s.url, "down", func(q seenhandler.QueueStatus) bool { return q.Pending == 0 })
	if q != (seenhandler.QueueStatus{Sent: 1}) {
		t.Errorf("queue %+v, want 1 sent", q)
	}
	if ids := sentIDs(t, s.stdout.String()); ids["B1"] != 1 {
		t.Errorf("sent %v, want B1 once", ids)
	}
	if out := s.stop(t); !strings.Contains(out, "1 accepted, 1 sent, 0 failed, 0 pending") {
		t.Errorf("stderr:\n%s", out)
	}
}
