package datastore

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger returns the zap logger handed to etcd's server and client
// libraries. etcd logs a great deal at info level, so it stays silent unless
// lg has debug enabled; then its messages go to lg, at their own level.
func zapLogger(lg *slog.Logger) *zap.Logger {
	if lg == nil || !lg.Enabled(context.Background(), slog.LevelDebug) {
		return zap.NewNop()
	}
	return zap.New(&slogCore{h: lg.Handler()})
}

// slogCore is a zapcore.Core that writes through a slog.Handler.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h, attrs: append(append([]slog.Attr(nil), c.attrs...), zapAttrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	msg := e.Message
	if e.LoggerName != "" {
		msg = e.LoggerName + ": " + msg
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), msg, 0)
	r.AddAttrs(c.attrs...)
	r.AddAttrs(zapAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// zapAttrs renders zap fields through zap's own map encoder, which knows
// every field type.
func zapAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	return attrs
}
