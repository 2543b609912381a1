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

// TestAuditExistingLogger: the CLI's audit stream appends to the audit file
// only if the server created it, and never writes to standard output.
func TestAuditExistingLogger(t *testing.T) {
	for _, file := range []string{"", "-"} {
		if l, closeFn := (Audit{File: file}).ExistingLogger(); l != nil || closeFn() != nil {
			t.Errorf("file %q: logger %v", file, l)
		}
	}
	path := filepath.Join(t.TempDir(), "audit.json")
	if l, _ := (Audit{File: path}).ExistingLogger(); l != nil {
		t.Error("logger for a file that does not exist")
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the CLI created the audit file")
	}
	writeFile(t, path, "")
	l, closeFn := (Audit{File: path}).ExistingLogger()
	if l == nil {
		t.Fatal("no logger for an existing file")
	}
	l.Info("audit", "user", "alice")
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), `"user":"alice"`) {
		t.Errorf("file holds %q", data)
	}
}

// TestAuditReopen: after logrotate renames the file, Reopen makes the
// records go to a new file at the configured path.
func TestAuditReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.json")
	l, err := (Audit{File: path}).Open(slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Info("before")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Info("rotated, not reopened")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Info("after")
	old, _ := os.ReadFile(path + ".1")
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `"before"`) || !strings.Contains(string(old), `"rotated, not reopened"`) ||
		strings.Contains(string(cur), "before") || !strings.Contains(string(cur), `"msg":"after"`) {
		t.Errorf("rotated file %q, new file %q", old, cur)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened file mode %v, want 0600", fi.Mode().Perm())
	}
}
