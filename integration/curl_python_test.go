package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runTool runs an external client with secrets in its environment or stdin
// (never in argv, where ps shows them) and returns stdout, stderr and the
// error.
func runTool(t testing.TB, stdin string, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// curlConfig is a curl config file (read from stdin with -K -) carrying the
// credentials, equivalent to -u user:pass.
func curlConfig(user, pass string) string {
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `user = "` + esc.Replace(user) + ":" + esc.Replace(pass) + "\"\n"
}

// TestCurl lists and fetches mail through passgate with curl, which logs in
// with AUTHENTICATE PLAIN (curl 7.88 cannot be made to send LOGIN).
func TestCurl(t *testing.T) {
	curl := requireTool(t, "curl")
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true})
	a := newAccount(t, d, pg, true)
	d.deliver(t, a.User, testMessage(a.User, "fetched by curl", "curl was here"))

	tests := []struct {
		name string
		url  string
		args []string
		want string
	}{
		{"imap list", "imap://" + pg.IMAPAddr + "/", nil, "INBOX"},
		{"imap fetch", "imap://" + pg.IMAPAddr + "/INBOX;UID=1", nil, "curl was here"},
		{"imap STARTTLS fetch", "imap://" + pg.IMAPAddr + "/INBOX;UID=1", []string{"--ssl-reqd", "--cacert", pg.CertFile}, "Subject: fetched by curl"},
		{"imaps examine", "imaps://" + pg.IMAPSAddr + "/INBOX", []string{"--cacert", pg.CertFile, "-X", "EXAMINE INBOX"}, "1 EXISTS"},
		{"imaps fetch", "imaps://" + pg.IMAPSAddr + "/INBOX;UID=1", []string{"--cacert", pg.CertFile}, "curl was here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-sS", "--max-time", "20", "-K", "-", "--login-options", "AUTH=PLAIN"}, tt.args...)
			out, errOut, err := runTool(t, curlConfig(a.User, a.AppPass), nil, curl, append(args, tt.url)...)
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", tt.url, err, errOut)
			}
			if !strings.Contains(out, tt.want) {
				t.Fatalf("curl %s: output %q lacks %q", tt.url, out, tt.want)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, errOut, err := runTool(t, curlConfig(a.User, "wrong password"), nil, curl,
			"-sS", "--max-time", "20", "-K", "-", "--login-options", "AUTH=PLAIN", "imap://"+pg.IMAPAddr+"/")
		if err == nil {
			t.Fatal("curl with a wrong password succeeded")
		}
		if !strings.Contains(errOut, "Login denied") && !strings.Contains(errOut, "(67)") {
			t.Logf("curl error: %s", errOut)
		}
	})
}

// pythonIMAP is a small imaplib client; the credentials come from the
// environment. It prints one JSON object: ok, error, and the number of
// messages in INBOX.
const pythonIMAP = `
import imaplib, json, os, ssl
env = os.environ
out = {"ok": False, "error": "", "exists": -1}
try:
    ctx = ssl.create_default_context(cafile=env["PG_CAFILE"])
    mode = env["PG_MODE"]
    if mode == "tls":
        m = imaplib.IMAP4_SSL(env["PG_HOST"], int(env["PG_TLS_PORT"]), ssl_context=ctx, timeout=20)
    else:
        m = imaplib.IMAP4(env["PG_HOST"], int(env["PG_PORT"]), timeout=20)
        if mode == "starttls":
            m.starttls(ssl_context=ctx)
    user, secret = env["PG_USER"], env["PG_SECRET"]
    if env["PG_MECH"] == "plain":
        m.authenticate("PLAIN", lambda _: ("\0" + user + "\0" + secret).encode())
    else:
        m.login(user, secret)
    typ, data = m.select("INBOX", readonly=True)
    out["exists"] = int(data[0])
    m.logout()
    out["ok"] = True
except Exception as e:
    out["error"] = str(e)
print(json.dumps(out))
`

type pythonResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Exists int    `json:"exists"`
}

// runPython logs in to passgate with Debian's python3 imaplib.
func runPython(t testing.TB, pg *Passgate, mode, mech, user, secret string) pythonResult {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	host, port := splitAddr(t, pg.IMAPAddr)
	_, tlsPort := splitAddr(t, pg.IMAPSAddr)
	env := []string{"PG_HOST=" + host, "PG_PORT=" + port, "PG_TLS_PORT=" + tlsPort, "PG_CAFILE=" + pg.CertFile,
		"PG_MODE=" + mode, "PG_MECH=" + mech, "PG_USER=" + user, "PG_SECRET=" + secret}
	out, errOut, err := runTool(t, "", env, python, "-c", pythonIMAP)
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, errOut)
	}
	var r pythonResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("python3 imaplib output %q: %v", out, err)
	}
	return r
}

func splitAddr(t testing.TB, a string) (host, port string) {
	t.Helper()
	host, port, ok := strings.Cut(a, ":")
	if !ok {
		t.Fatalf("address %q without port", a)
	}
	return host, port
}

// TestPythonImaplib logs in with Python's imaplib: login() (the LOGIN
// command) and authenticate('PLAIN'), over each transport, and checks the
// error text an MFA user sees for a primary password.
func TestPythonImaplib(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true})
	a := newAccount(t, d, pg, true)
	d.deliver(t, a.User, testMessage(a.User, "for python", "hello python"))

	for _, mode := range []string{viaPlain, viaStartTLS, viaTLS} {
		for _, mech := range []string{"login", "plain"} {
			t.Run(mode+" "+mech, func(t *testing.T) {
				r := runPython(t, pg, mode, mech, a.User, a.AppPass)
				if !r.OK || r.Exists != 1 {
					t.Fatalf("imaplib %s %s: %+v, want INBOX with 1 message", mode, mech, r)
				}
			})
		}
	}
	t.Run("app password without spaces", func(t *testing.T) {
		if r := runPython(t, pg, viaTLS, "login", a.User, upper(spaceless(a.AppPass))); !r.OK {
			t.Fatalf("imaplib login: %+v", r)
		}
	})
	t.Run("primary password with MFA", func(t *testing.T) {
		for _, mech := range []string{"login", "plain"} {
			r := runPython(t, pg, viaTLS, mech, a.User, a.Primary)
			if r.OK || !strings.Contains(r.Error, "[ALERT]") || !strings.Contains(r.Error, portalURL) {
				t.Fatalf("imaplib %s with the primary password: %+v, want an error with [ALERT] and %s", mech, r, portalURL)
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		r := runPython(t, pg, viaTLS, "login", a.User, "not the password")
		if r.OK || !strings.Contains(r.Error, "AUTHENTICATIONFAILED") {
			t.Fatalf("imaplib login with a wrong password: %+v, want AUTHENTICATIONFAILED", r)
		}
	})
}
