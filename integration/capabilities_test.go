package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// pythonCapabilities is what a script built on imaplib sees: the capability
// list imaplib reads once, at connect, and never again; then, if IDLE is in
// it (as the widely copied IDLE helper checks), a login and one IDLE round.
const pythonCapabilities = `
import imaplib, json, os, ssl
env = os.environ
out = {"capabilities": [], "idle": False, "error": ""}
try:
    if env["PG_MODE"] == "tls":
        ctx = ssl.create_default_context(cafile=env["PG_CAFILE"])
        m = imaplib.IMAP4_SSL(env["PG_HOST"], int(env["PG_PORT"]), ssl_context=ctx, timeout=20)
    else:
        m = imaplib.IMAP4(env["PG_HOST"], int(env["PG_PORT"]), timeout=20)
    out["capabilities"] = list(m.capabilities)
    if 'IDLE' in m.capabilities:
        m.login(env["PG_USER"], env["PG_SECRET"])
        m.select("INBOX")
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        if m.readline().startswith(b"+"):
            m.send(b"DONE\r\n")
            while True:
                line = m.readline()
                if line.startswith(tag):
                    out["idle"] = line.split()[1] == b"OK"
                    break
        m.logout()
except Exception as e:
    out["error"] = str(e)
print(json.dumps(out))
`

// passgateOwned are the pre-login capabilities passgate decides itself,
// whatever the upstream announces: TLS, login mechanisms, the literal
// syntax it parses and the ID command it answers.
func passgateOwned(c string) bool {
	switch strings.ToUpper(c) {
	case "STARTTLS", "LOGINDISABLED", "SASL-IR", "LITERAL+", "LITERAL-", "ID":
		return true
	}
	return strings.HasPrefix(strings.ToUpper(c), "AUTH=")
}

type capabilitiesResult struct {
	Capabilities []string `json:"capabilities"`
	Idle         bool     `json:"idle"`
	Error        string   `json:"error"`
}

func runPythonCapabilities(t *testing.T, certFile, mode, address, user, secret string) capabilitiesResult {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	host, port := splitAddr(t, address)
	env := []string{"PG_HOST=" + host, "PG_PORT=" + port, "PG_MODE=" + mode, "PG_CAFILE=" + certFile,
		"PG_USER=" + user, "PG_SECRET=" + secret}
	out, errOut, err := runTool(t, "", env, python, "-c", pythonCapabilities)
	if err != nil {
		t.Fatalf("python3 imaplib: %v\n%s", err, errOut)
	}
	var r capabilitiesResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("python3 imaplib output %q: %v", out, err)
	}
	if r.Error != "" {
		t.Fatalf("python3 imaplib against %s: %s", address, r.Error)
	}
	return r
}

// comparable is a capability list without passgate's own, sorted, upper case.
func comparable(caps []string) []string {
	var out []string
	for _, c := range caps {
		if !passgateOwned(c) {
			out = append(out, strings.ToUpper(c))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPreloginCapabilitiesImaplib (issue 17): imaplib reads the capability
// list before login only. Straight to Dovecot and through passgate it holds
// the same capabilities, except those passgate owns; 'IDLE' in
// M.capabilities is true through passgate, and IDLE then works.
func TestPreloginCapabilitiesImaplib(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	d := sharedDovecot(t)
	pg := startPassgate(t, d, passgateOpts{AllowCleartext: true})
	a := newAccount(t, d, pg, true)
	for _, tt := range []struct {
		mode, straight, through string
	}{
		{viaPlain, d.IMAPAddr, pg.IMAPAddr},
		{viaTLS, d.IMAPSAddr, pg.IMAPSAddr},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			straight := runPythonCapabilities(t, d.CertFile, tt.mode, tt.straight, a.User, a.Primary)
			through := runPythonCapabilities(t, pg.CertFile, tt.mode, tt.through, a.User, a.AppPass)
			t.Logf("Dovecot:  %s", strings.Join(straight.Capabilities, " "))
			t.Logf("passgate: %s", strings.Join(through.Capabilities, " "))
			if s, p := comparable(straight.Capabilities), comparable(through.Capabilities); !slices.Equal(s, p) {
				t.Errorf("before login, apart from passgate's own: Dovecot announces %q, passgate %q", s, p)
			}
			if !slices.Contains(through.Capabilities, "IDLE") || !through.Idle {
				t.Errorf("through passgate: 'IDLE' in M.capabilities and IDLE: %+v", through)
			}
			if !straight.Idle {
				t.Errorf("straight to Dovecot IDLE failed: %+v", straight)
			}
		})
	}
}
