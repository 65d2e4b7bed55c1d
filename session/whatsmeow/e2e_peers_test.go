package whatsmeow_test

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/bluetick/bluetick/session/whatsmeow/internal/fakewa"
)

var e2ePeersDir = flag.String("e2e.peers", "", "a directory of peer gateways built by internal/peers/build.sh: with it, BenchmarkEndToEnd and TestEndToEnd also measure Wuzapi, Gowa and GowaNoValidation (one session)")

// e2eFakeEnv is the environment variable through which the whatsmeow of a
// peer binary (patched by internal/peers/build.sh) is pointed at a fake
// server: an e2eFakeTarget as JSON.
const e2eFakeEnv = "BLUETICK_FAKEWA"

// e2eFakeTarget is what a peer's patched whatsmeow is told about the fake.
type e2eFakeTarget struct {
	Addr    string `json:"addr"`     // 127.0.0.1:port
	TLSName string `json:"tls_name"` // the name its certificate is checked against
	RootKey string `json:"root_key"` // hex, for whatsmeow.WACertPubKey
	CertDER string `json:"cert_der"` // base64 of its TLS certificate
}

// e2ePeer is another project's gateway, run from its own binary in
// -e2e.peers over a store with one device that the fake logs in.
type e2ePeer struct {
	name   string
	binary string // its file in -e2e.peers
	// setup lays out in dir the stores the peer reads at startup, its one
	// device's included (paired in the whatsmeow store the benchmark's
	// other subjects have), and returns its command line for listening on
	// 127.0.0.1:port and its session's name.
	setup func(tb testing.TB, bin, dir string, port int) (args []string, session string)
	// request is the peer's request marking message id of chat read.
	request func(base, chat, id string) *http.Request
	// loggedIn asks the peer whether its session has logged in.
	loggedIn func(hc *http.Client, base string) bool
}

// e2ePeerGateways returns the peers, in the order a first round runs them.
func e2ePeerGateways() []e2ePeer {
	gowa := func(name string, args ...string) e2ePeer {
		return e2ePeer{name: name, binary: "gowa", setup: gowaSetup(args...), request: gowaRequest, loggedIn: gowaLoggedIn}
	}
	return []e2ePeer{
		{name: "Wuzapi", binary: "wuzapi", setup: wuzapiSetup, request: wuzapiRequest, loggedIn: wuzapiLoggedIn},
		gowa("Gowa"),
		// Its fastest setting: no usync "is on WhatsApp" query per read.
		gowa("GowaNoValidation", "--account-validation=false"),
	}
}

// wuzapiSetup: wuzapi keeps its stores beside its executable, in
// dbdata/main.db (whatsmeow's) and dbdata/users.db (its users: a token and
// the JID of the device it connects at startup when connected=1), so the
// binary is copied into dir.
func wuzapiSetup(tb testing.TB, bin, dir string, port int) ([]string, string) {
	tb.Helper()
	exe := filepath.Join(dir, "wuzapi")
	copyFile(tb, bin, exe)
	data := filepath.Join(dir, "dbdata")
	if err := os.Mkdir(data, 0o755); err != nil {
		tb.Fatal(err)
	}
	names := e2eDevices(tb, "sqlite", peerStore(filepath.Join(data, "main.db")), 1)
	db, err := sql.Open("sqlite", filepath.Join(data, "users.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	// wuzapi's own schema (main.go's initializeSchema, SQLite version).
	if _, err := db.Exec(`CREATE TABLE users (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL,
		token TEXT NOT NULL,
		webhook TEXT NOT NULL DEFAULT '',
		jid TEXT NOT NULL DEFAULT '',
		qrcode TEXT NOT NULL DEFAULT '',
		connected INTEGER,
		expiration INTEGER,
		events TEXT NOT NULL DEFAULT 'All',
		proxy_url TEXT DEFAULT ''
	)`); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO users (name, token, jid, connected, events) VALUES ('bluetick', ?, ?, 1, 'Message')`,
		e2eToken, names[0]+":1@s.whatsapp.net"); err != nil {
		tb.Fatal(err)
	}
	return []string{exe, "-address", "127.0.0.1", "-port", strconv.Itoa(port)}, names[0]
}

// wuzapiRequest is wuzapi's POST /chat/markread (API.md): the user's token
// in the Token header, the message ids and the chat in the body.
func wuzapiRequest(base, chat, id string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, base+"/chat/markread", strings.NewReader(`{"Id":["`+id+`"],"Chat":"`+chat+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Token", e2eToken)
	return r
}

func wuzapiLoggedIn(hc *http.Client, base string) bool {
	r, _ := http.NewRequest(http.MethodGet, base+"/session/status", nil)
	r.Header.Set("Token", e2eToken)
	var status struct{ Data struct{ LoggedIn bool } }
	return getJSON(hc, r, &status) && status.Data.LoggedIn
}

// gowaSetup: gowa keeps its stores under its working directory, dir:
// storages/whatsapp.db (whatsmeow's, whose devices it connects at
// startup) and storages/chatstorage.db (its own, which it creates).
func gowaSetup(extra ...string) func(testing.TB, string, string, int) ([]string, string) {
	return func(tb testing.TB, bin, dir string, port int) ([]string, string) {
		tb.Helper()
		storages := filepath.Join(dir, "storages")
		if err := os.Mkdir(storages, 0o755); err != nil {
			tb.Fatal(err)
		}
		path := filepath.Join(storages, "whatsapp.db")
		names := e2eDevices(tb, "sqlite", peerStore(path), 1)
		// Basic auth is gowa's one way to require credentials; the UI is
		// off and not fetched (no network).
		args := []string{bin, "rest", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--basic-auth", "bluetick:" + e2eToken, "--ui-enabled=false", "--ui-auto-update=false",
			"--db-uri", "file:" + path}
		return append(args, extra...), names[0]
	}
}

// gowaRequest is gowa's POST /message/{message_id}/read: the chat as phone
// in the body, the only device by default (no X-Device-Id).
func gowaRequest(base, chat, id string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, base+"/message/"+id+"/read", strings.NewReader(`{"phone":"`+chat+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("bluetick", e2eToken)
	return r
}

func gowaLoggedIn(hc *http.Client, base string) bool {
	r, _ := http.NewRequest(http.MethodGet, base+"/app/status", nil)
	r.SetBasicAuth("bluetick", e2eToken)
	var status struct {
		Results struct {
			LoggedIn bool `json:"is_logged_in"`
		} `json:"results"`
	}
	return getJSON(hc, r, &status) && status.Results.LoggedIn
}

// peerStore is the DSN of the whatsmeow store at path that a peer reads
// (WAL, as the peer opens it meanwhile).
func peerStore(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"
}

// getJSON does r and decodes a 200 answer's JSON into v.
func getJSON(hc *http.Client, r *http.Request, v any) bool {
	resp, err := hc.Do(r)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		tb.Fatal(err)
	}
}

// e2ePeerProcess is a running peer gateway.
type e2ePeerProcess struct {
	peer  e2ePeer
	cmd   *exec.Cmd
	log   string        // its standard output and error
	ended chan struct{} // closed once Wait has returned
	err   error         // Wait's, once ended
}

// e2ePeerSubjects starts the peers -e2e.subjects picks when -e2e.peers is
// set, for the one-session variants only.
func e2ePeerSubjects(tb testing.TB, sessions int, only *regexp.Regexp) []*e2eSubject {
	tb.Helper()
	if *e2ePeersDir == "" || sessions != 1 {
		return nil
	}
	var subjects []*e2eSubject
	for _, p := range e2ePeerGateways() {
		if only.MatchString(p.name) {
			subjects = append(subjects, startPeer(tb, p))
		}
	}
	return subjects
}

// startPeer starts p over a fresh store and a fake server of its own, and
// waits until its session has logged in. tb's cleanup stops it before the
// fake server stops.
func startPeer(tb testing.TB, p e2ePeer) *e2eSubject {
	tb.Helper()
	bin, err := filepath.Abs(filepath.Join(*e2ePeersDir, p.binary))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		tb.Fatalf("-e2e.peers: %v (internal/peers/build.sh builds it)", err)
	}
	srv := fakewa.Start(tb, fakewa.WithCountOnly())
	dir := tb.TempDir()
	port := freePort(tb)
	args, session := p.setup(tb, bin, dir, port)
	target, err := json.Marshal(e2eFakeTarget{Addr: srv.Addr(),
		TLSName: srv.HTTPClient().Transport.(*http.Transport).TLSClientConfig.ServerName,
		RootKey: hex.EncodeToString(whatsmeow.WACertPubKey[:]), // fakewa's while srv lives
		CertDER: base64.StdEncoding.EncodeToString(srv.Certificate().Raw)})
	if err != nil {
		tb.Fatal(err)
	}
	logPath := filepath.Join(dir, "out.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close() // the process has its own copy
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), e2eFakeEnv+"="+string(target))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	proc := &e2ePeerProcess{peer: p, cmd: cmd, log: logPath, ended: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		close(proc.ended)
	}()
	tb.Cleanup(func() { proc.stop(tb) })
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// The fake sees the login first; the peer says so once it has handled
	// it.
	limit := e2eConnectWait(1) + 30*time.Second
	srv.WaitConnections(tb, limit, 1)
	proc.waitLoggedIn(tb, base, limit)
	return &e2eSubject{name: p.name, srv: srv, url: base, names: []string{session}, peer: proc}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitLoggedIn asks the peer every 50 ms, for up to limit, whether its
// session has logged in, as its users would; the peers tell nobody when
// they are ready. It is called once the fake has the peer's connection, so
// it asks only while the peer handles its login; the measured rounds wait
// on events.
func (p *e2ePeerProcess) waitLoggedIn(tb testing.TB, base string, limit time.Duration) {
	tb.Helper()
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !p.peer.loggedIn(hc, base) {
		select {
		case <-p.ended:
			tb.Fatalf("%s: the peer process ended (%v):\n%s", p.peer.name, p.err, p.output())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not logged in within %v:\n%s", p.peer.name, limit, p.output())
		}
	}
}

// output returns the end of what the process wrote.
func (p *e2ePeerProcess) output() string {
	b, _ := os.ReadFile(p.log)
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// clockTick is the unit of /proc/PID/stat's times, from getconf CLK_TCK
// (100 Hz where that fails, as on every Linux of today).
var clockTick = sync.OnceValue(func() time.Duration {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	hz, err2 := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || err2 != nil || hz <= 0 {
		hz = 100
	}
	return time.Second / time.Duration(hz)
})

// cpu returns the process's user+system time so far: the larger of two
// lower bounds of it. /proc/PID/stat has the whole process's, threads
// that have ended included, but in whole clock ticks (10 ms: 200 quick
// requests may not make one); /proc/PID/task/*/schedstat has each live
// thread's in nanoseconds, but forgets the threads that have ended (Go
// keeps its threads, so it seldom misses any).
func (p *e2ePeerProcess) cpu(tb testing.TB) time.Duration {
	tb.Helper()
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("%s: %v", p.peer.name, err)
	}
	// The fields after the command's name, which is in parentheses and may
	// hold anything: state is the 3rd field, utime the 14th, stime the 15th.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		tb.Fatalf("%s: /proc/%d/stat: %q", p.peer.name, pid, b)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("%s: /proc/%d/stat: %q", p.peer.name, pid, b)
	}
	ticks := time.Duration(utime+stime) * clockTick()
	return max(ticks, liveThreadsCPU(pid))
}

// liveThreadsCPU sums the time on CPU of pid's live threads, the first
// field of their schedstat (nanoseconds); 0 where the kernel has none.
func liveThreadsCPU(pid int) time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

// stop ends the process as its operator would, with SIGTERM (both peers
// shut down on it), and kills it if it has not ended within a minute.
func (p *e2ePeerProcess) stop(tb testing.TB) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case <-p.ended:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.ended
		tb.Errorf("%s: the peer process did not end within a minute of SIGTERM; killed\n%s", p.peer.name, p.output())
	}
}

// waitReceipts waits until the peer's fake has counted want more message
// ids than in before: the peers answer once their receipt is written, not
// read, and have no barrier command.
func (s *e2eSubject) waitReceipts(tb testing.TB, before fakewa.Counts, want int64) {
	tb.Helper()
	s.srv.WaitCounts(tb, 2*wireWait, func(c fakewa.Counts) bool { return c.ReceiptIDs-before.ReceiptIDs >= want })
}

// peerRatios reports, for a Bluetick subject, its ratios to each peer of
// the round: <subject>/<peer>-req/s and <subject>/<peer>-cpu/req.
func peerRatios(b *testing.B, name string, res e2eResult, results map[string]e2eResult) {
	if !strings.HasPrefix(name, "Bluetick") {
		return
	}
	for _, p := range e2ePeerGateways() {
		if peer, ok := results[p.name]; ok {
			b.ReportMetric(res.rate()/peer.rate(), name+"/"+p.name+"-req/s")
			b.ReportMetric(res.cpuPerRequest()/peer.cpuPerRequest(), name+"/"+p.name+"-cpu/req")
		}
	}
}
