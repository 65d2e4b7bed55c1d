package whatsmeow

import (
	"context"
	"fmt"
	"log/slog"

	waLog "go.mau.fi/whatsmeow/util/log"
)

// slogLogger adapts a *slog.Logger to whatsmeow's logger interface, with
// whatsmeow's module path as the "module" attribute.
type slogLogger struct {
	l      *slog.Logger
	module string
}

var _ waLog.Logger = slogLogger{}

func newWALogger(l *slog.Logger, module string) waLog.Logger {
	return slogLogger{l: l, module: module}
}

func (s slogLogger) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.LogAttrs(ctx, level, fmt.Sprintf(msg, args...), slog.String("module", s.module))
}

func (s slogLogger) Errorf(msg string, args ...any) { s.log(slog.LevelError, msg, args) }
func (s slogLogger) Warnf(msg string, args ...any)  { s.log(slog.LevelWarn, msg, args) }
func (s slogLogger) Infof(msg string, args ...any)  { s.log(slog.LevelInfo, msg, args) }
func (s slogLogger) Debugf(msg string, args ...any) { s.log(slog.LevelDebug, msg, args) }

func (s slogLogger) Sub(module string) waLog.Logger {
	return slogLogger{l: s.l, module: s.module + "/" + module}
}
