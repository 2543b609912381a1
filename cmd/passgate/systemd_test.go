package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testtool"
)

// TestSystemdUnitVerifies: packaging/passgate.service passes
// `systemd-analyze verify` (syntax, known options, a usable ExecStart) and
// keeps the promises the README makes for it.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testtool.Require(t, "systemd-analyze", "systemd")
	raw, err := os.ReadFile(filepath.Join("..", "..", "packaging", "passgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"Type=notify", "StateDirectory=passgate", "ProtectSystem=strict",
		"NoNewPrivileges=true", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "PrivateTmp=true",
		"ProtectHome=true", "RestrictAddressFamilies=", "ExecStart=/usr/local/bin/passgate serve "} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	// verify checks that ExecStart's program exists: point it at a passgate
	// built here, the unit file otherwise unchanged.
	bin := filepath.Join(t.TempDir(), "passgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(t.TempDir(), "passgate.service")
	unit = strings.ReplaceAll(unit, "/usr/local/bin/passgate", bin)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
