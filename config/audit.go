package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
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
	l, err := a.Open(main, stdout)
	if err != nil {
		return nil, nil, err
	}
	return l.Logger, l.Close, nil
}

// AuditLog is an open audit log.
type AuditLog struct {
	*slog.Logger
	// Reopen opens File again, for logrotate: records written after it
	// go to the file now at that path. A no-op for "" and "-".
	Reopen func() error
	// Close closes the file (a no-op for "" and "-").
	Close func() error
}

// Open opens the audit log as Logger does, with a Reopen.
func (a Audit) Open(main *slog.Logger, stdout io.Writer) (*AuditLog, error) {
	noop := func() error { return nil }
	switch a.File {
	case "":
		return &AuditLog{main, noop, noop}, nil
	case "-":
		return &AuditLog{slog.New(slog.NewJSONHandler(stdout, nil)), noop, noop}, nil
	}
	f := &appendFile{path: a.File}
	if err := f.Reopen(); err != nil {
		return nil, err
	}
	return &AuditLog{slog.New(slog.NewJSONHandler(f, nil)), f.Reopen, f.Close}, nil
}

// appendFile is a file opened for append that Reopen replaces.
type appendFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func (w *appendFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Write(p)
}

// Reopen opens path (created with mode 0600) and closes the file open
// before; if it cannot, the old file stays in use.
func (w *appendFile) Reopen() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (w *appendFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
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
