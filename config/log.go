package config

import (
	"io"
	"log/slog"
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// SlogLevel is Level as a slog.Level; info for anything unknown.
func (g Log) SlogLevel() slog.Level {
	switch g.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Handler returns a slog.Handler writing to w in Format at Level.
func (g Log) Handler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: g.SlogLevel()}
	if g.Format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
