package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Audit configures the audit log: one JSON record per login attempt.
type Audit struct {
	// File is where the records go: "" (default) the process log, "-"
	// standard output as JSON, or a path: a JSON file opened for append,
	// created with mode 0600. A relative path is relative to the
	// configuration file.
	File string `toml:"file"`
}

func (l *loader) audit(a *Audit) {
	switch a.File {
	case "", "-":
	default:
		if strings.TrimSpace(a.File) != a.File {
			l.fail("audit.file", nil, "%q has leading or trailing spaces", a.File)
			return
		}
		a.File = l.path(a.File)
	}
}

// Logger opens the audit log: main for "", a JSON logger on stdout for
// "-", or a JSON logger appending to File. The returned close function
// closes the file (a no-op otherwise).
func (a Audit) Logger(main *slog.Logger, stdout io.Writer) (*slog.Logger, func() error, error) {
	noop := func() error { return nil }
	switch a.File {
	case "":
		return main, noop, nil
	case "-":
		return slog.New(slog.NewJSONHandler(stdout, nil)), noop, nil
	}
	f, err := os.OpenFile(a.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return slog.New(slog.NewJSONHandler(f, nil)), f.Close, nil
}

// ExistingLogger opens the audit log for a process that writes beside a
// server it does not run (the CLI on the store): File if it exists, never
// created, so that no file is left that the server cannot open; nil for "",
// "-" (the server's process log and standard output are not this process's)
// and a file that does not exist. The returned close function closes the
// file (a no-op otherwise).
func (a Audit) ExistingLogger() (*slog.Logger, func() error) {
	noop := func() error { return nil }
	if a.File == "" || a.File == "-" {
		return nil, noop
	}
	f, err := os.OpenFile(a.File, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, noop
	}
	return slog.New(slog.NewJSONHandler(f, nil)), f.Close
}
