package main

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testlog"
)

// TestCheckConfigPositionalPath (issue 14 item 9): `passgate check-config
// FILE` read ./passgate.toml and ignored FILE.
func TestCheckConfigPositionalPath(t *testing.T) {
	path := testConfig(t)
	out, _, _ := cli(t, "", "check-config", path) // the upstream is down: only the config counts here
	if !strings.Contains(out, path+": configuration is valid") {
		t.Errorf("check-config %s: stdout %q", path, out)
	}
	other := filepath.Join(t.TempDir(), "other.toml")
	if _, _, err := cli(t, "", "check-config", "--config", other, path); err == nil || !strings.Contains(err.Error(), "two files") {
		t.Errorf("check-config --config OTHER FILE: err = %v, want a refusal naming both", err)
	}
}

// fakeMasterIMAP is an upstream that greets with SASL-IR and answers the
// first AUTHENTICATE with reply (a tagged status without the tag).
func fakeMasterIMAP(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ID] fake\r\n"))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					tag, rest, _ := strings.Cut(line, " ")
					switch {
					case strings.HasPrefix(strings.ToUpper(rest), "AUTHENTICATE"):
						c.Write([]byte(tag + " " + reply + "\r\n"))
					case strings.HasPrefix(strings.ToUpper(rest), "LOGOUT"):
						c.Write([]byte("* BYE\r\n" + tag + " OK bye\r\n"))
						return
					default:
						c.Write([]byte(tag + " OK done\r\n"))
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCheckConfigMasterLogin (issue 14 item 9): check-config said
// "reachable, greets" and exited 0 with a wrong master secret. With
// probe_user it logs in as that user and fails, naming the fix; without
// it, it says that the master login was not checked.
func TestCheckConfigMasterLogin(t *testing.T) {
	for _, tc := range []struct {
		name, reply, probe string
		wantErr, wantOut   string
	}{
		{"wrong secret", "NO [AUTHENTICATIONFAILED] Authentication failed.", "postmaster", "master_secret", ""},
		{"right secret", "OK [CAPABILITY IMAP4rev1] Logged in", "postmaster", "", "master login as postmaster works"},
		{"no probe user", "NO never asked", "", "", "master login NOT checked: set imap.upstream.probe_user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testConfig(t)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			text = []byte(strings.Replace(string(text), `address = "127.0.0.1:9"`,
				`address = "`+fakeMasterIMAP(t, tc.reply)+`"`+"\nprobe_user = \""+tc.probe+`"`, 1))
			if err := os.WriteFile(path, text, 0o600); err != nil {
				t.Fatal(err)
			}
			out, _, err := cli(t, "", "check-config", path)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one naming %s", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case !strings.Contains(out, tc.wantOut):
				t.Errorf("stdout %q, want %q", out, tc.wantOut)
			}
		})
	}
}

// TestVersionFromBuildInfo (issue 14 item 9): a plain `go build` printed
// "dev"; the module's build info names the revision and its time.
func TestVersionFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Path: "github.com/passgate/passgate", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"", bi, "rev 0123456789ab-dirty 2026-01-02T03:04:05Z (go1.26)"},
		{"v1.2.3", bi, "v1.2.3"},
		{"", &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0 (go1.26)"},
		{"", nil, "dev"},
	} {
		if got := versionText(tc.linked, tc.bi, tc.bi != nil); got != tc.want {
			t.Errorf("versionText(%q, ...) = %q, want %q", tc.linked, got, tc.want)
		}
	}
	if out := mustCLI(t, "", "version"); out == "passgate dev\n" {
		t.Errorf("version printed %q although the binary has build info", out)
	}
}

// TestOpenFileLimitWarning (issue 14 item 9): nothing warned when the
// open-file limit was below what max_connections needs.
func TestOpenFileLimitWarning(t *testing.T) {
	soft, ok := openFileLimit()
	if !ok {
		t.Skip("no RLIMIT_NOFILE here")
	}
	cfg, err := loadConfig(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.MaxConnections = int(soft) // two fds a session: twice too many
	log, logs := testlog.New(slog.LevelInfo)
	warnOpenFiles(cfg, log)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "LimitNOFILE") {
		t.Errorf("no warning with nofile %d and max_connections %d: %q", soft, soft, logs.String())
	}
	cfg.Limits.MaxConnections = int(soft/2) - 100
	log, logs = testlog.New(slog.LevelInfo)
	warnOpenFiles(cfg, log)
	if logs.String() != "" {
		t.Errorf("warning with nofile %d and max_connections %d: %q", soft, cfg.Limits.MaxConnections, logs.String())
	}
}
