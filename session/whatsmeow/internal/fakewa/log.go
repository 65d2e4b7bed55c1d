package fakewa

import (
	"fmt"
	"sync"
	"testing"
	"time"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// maxLogLines bounds the log kept for a failing test; older lines are dropped.
const maxLogLines = 2000

// testLog collects whatsmeow and server log lines in memory and prints them
// with t.Log when the test has failed by the time its cleanup runs. Lines
// logged after that (by goroutines that outlive the test) are dropped, so
// late logging never panics.
type testLog struct {
	t       testing.TB
	mu      sync.Mutex
	lines   []string
	dropped int
	done    bool
}

// newTestLog returns an empty log that t's cleanup flushes.
func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(l.flush)
	return l
}

func (l *testLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if len(l.lines) == maxLogLines {
		copy(l.lines, l.lines[1:])
		l.lines = l.lines[:maxLogLines-1]
		l.dropped++
	}
	l.lines = append(l.lines, line)
}

func (l *testLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if !l.t.Failed() {
		return
	}
	if l.dropped > 0 {
		l.t.Logf("(%d earlier log lines dropped)", l.dropped)
	}
	for _, line := range l.lines {
		l.t.Log(line)
	}
}

// logger returns a waLog.Logger writing to l under the given module name.
func (l *testLog) logger(module string) waLog.Logger {
	return &moduleLog{log: l, module: module}
}

// moduleLog is the waLog.Logger view of a testLog.
type moduleLog struct {
	log    *testLog
	module string
}

var _ waLog.Logger = (*moduleLog)(nil)

func (m *moduleLog) outputf(level, msg string, args ...any) {
	m.log.add(fmt.Sprintf("%s [%s %s] %s", time.Now().Format("15:04:05.000"), m.module, level, fmt.Sprintf(msg, args...)))
}

func (m *moduleLog) Errorf(msg string, args ...any) { m.outputf("ERROR", msg, args...) }
func (m *moduleLog) Warnf(msg string, args ...any)  { m.outputf("WARN", msg, args...) }
func (m *moduleLog) Infof(msg string, args ...any)  { m.outputf("INFO", msg, args...) }
func (m *moduleLog) Debugf(msg string, args ...any) { m.outputf("DEBUG", msg, args...) }

func (m *moduleLog) Sub(module string) waLog.Logger {
	return &moduleLog{log: m.log, module: m.module + "/" + module}
}
