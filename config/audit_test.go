package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditLogger(t *testing.T) {
	main := slog.New(slog.DiscardHandler)
	var stdout bytes.Buffer
	if l, closeFn, err := (Audit{}).Logger(main, &stdout); err != nil || l != main || closeFn() != nil {
		t.Errorf("\"\": %v, %v", l, err)
	}
	l, _, err := (Audit{File: "-"}).Logger(main, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("audit", "user", "alice")
	if !strings.HasPrefix(stdout.String(), `{"time":`) {
		t.Errorf("stdout: %q", stdout.String())
	}
	path := filepath.Join(t.TempDir(), "audit.json")
	for range 2 {
		l, closeFn, err := (Audit{File: path}).Logger(main, &stdout)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("audit", "user", "alice")
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"msg":"audit"`); n != 2 {
		t.Errorf("file holds %d records after two opens, want 2 (append)", n)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := (Audit{File: filepath.Join(path, "x")}).Logger(main, &stdout); err == nil {
		t.Error("opening a file under a file succeeded")
	}
}
