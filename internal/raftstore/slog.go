package raftstore

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// slogLogger is an hclog.Logger that writes through a *slog.Logger, so that hashicorp/raft's
// lines come out with the broker's own (log.format text or json, log.level at runtime) and
// carry component=raft[.name]. Its own level is a floor under the slog handler's: raft's
// expected WARNs (a single voter electing itself) stay hidden whatever log.level says.
type slogLogger struct {
	base  *slog.Logger // with the implied args
	l     *slog.Logger // base with the component
	name  string
	args  []any
	level *atomic.Int32 // hclog.Level, shared by the loggers derived from one another
}

func newSlogLogger(l *slog.Logger, name string, level hclog.Level) *slogLogger {
	lv := new(atomic.Int32)
	lv.Store(int32(level))
	return &slogLogger{base: l, l: l.With("component", name), name: name, level: lv}
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s *slogLogger) enabled(level hclog.Level) bool {
	if level == hclog.Off {
		return false
	}
	floor := hclog.Level(s.level.Load())
	if level != hclog.NoLevel && level < floor {
		return false
	}
	return s.l.Enabled(context.Background(), slogLevel(level))
}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if s.enabled(level) {
		s.l.Log(context.Background(), slogLevel(level), msg, args...)
	}
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) IsTrace() bool { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool { return s.enabled(hclog.Error) }

func (s *slogLogger) ImpliedArgs() []any { return s.args }

func (s *slogLogger) With(args ...any) hclog.Logger {
	c := *s
	c.base = s.base.With(args...)
	c.l = c.base.With("component", s.name)
	c.args = append(append([]any(nil), s.args...), args...)
	return &c
}

func (s *slogLogger) Name() string { return s.name }

func (s *slogLogger) Named(name string) hclog.Logger {
	if s.name != "" {
		name = s.name + "." + name
	}
	return s.ResetNamed(name)
}

// ResetNamed keeps the implied args and replaces the component.
func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	c.l = s.base.With("component", name)
	return &c
}

func (s *slogLogger) SetLevel(level hclog.Level) { s.level.Store(int32(level)) }
func (s *slogLogger) GetLevel() hclog.Level      { return hclog.Level(s.level.Load()) }

func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

// StandardWriter logs each write, one line per message, at INFO (or opts.ForceLevel).
func (s *slogLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return writerFunc(func(p []byte) (int, error) {
		s.Log(level, string(bytes.TrimRight(p, "\n")))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
