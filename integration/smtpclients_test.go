package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The SMTP clients the tests drive: swaks, Debian's python3 smtplib and
// curl. Secrets reach them through the environment (swaks, python) or stdin
// (curl -K -), never argv.

// sendOpts describe one submission by an external client.
type sendOpts struct {
	Via          string // viaPlain, viaStartTLS or viaTLS
	Mech         string // "PLAIN", "LOGIN", or "" for no AUTH
	User, Secret string
	From         string
	To           []string
	File         string // the message, exactly as sent (CRLF line ends)
	Src          string // swaks only: the loopback address to connect from
	CAFile       string // swaks only: the CA to verify passgate with, if not its own certificate
	QuitAfter    string // swaks only: --quit-after (e.g. "AUTH": log in, send nothing)
}

// address is the passgate port for the way of connecting.
func (g *smtpGate) address(via string) string {
	if via == viaTLS {
		return g.SubmitsAddr
	}
	return g.SubmitAddr
}

// swaksResult is what swaks did: its exit code (see swaks(1) EXIT CODES:
// 0 sent, 23 MAIL refused, 24 no RCPT accepted, 28 AUTH failed...) and its
// transcript.
type swaksResult struct {
	Exit       int
	Transcript string
}

// runSwaks sends o.File with swaks. TLS is verified against passgate's
// certificate (--tls-verify --tls-ca-path).
func runSwaks(t testing.TB, g *smtpGate, o sendOpts) swaksResult {
	t.Helper()
	swaks := requireTool(t, "swaks")
	host, port := splitAddr(t, g.address(o.Via))
	// swaks ends DATA with "\r\n.\r\n" after the data as given (without
	// the last line's CRLF, which it would otherwise double): hand it the
	// message without that CRLF so that what it sends is the file's bytes.
	msg, err := os.ReadFile(o.File)
	if err != nil {
		t.Fatalf("swaks data: %v", err)
	}
	data := filepath.Join(t.TempDir(), "swaks-data.eml")
	if err := os.WriteFile(data, bytes.TrimSuffix(msg, []byte("\r\n")), 0o644); err != nil {
		t.Fatalf("swaks data: %v", err)
	}
	args := []string{"--server", host, "--port", port, "--timeout", "60s", "--ehlo", "swaks.client.test",
		"--from", o.From, "--to", strings.Join(o.To, ","), "--data", "@" + data, "--suppress-data"}
	if o.Src != "" {
		args = append(args, "--local-interface", o.Src)
	}
	if o.QuitAfter != "" {
		args = append(args, "--quit-after", o.QuitAfter)
	}
	ca := g.CertFile
	if o.CAFile != "" {
		ca = o.CAFile
	}
	switch o.Via {
	case viaStartTLS:
		args = append(args, "-tls", "--tls-verify", "--tls-ca-path", ca)
	case viaTLS:
		args = append(args, "--tls-on-connect", "--tls-verify", "--tls-ca-path", ca)
	}
	var env []string
	if o.Mech != "" {
		args = append(args, "--auth", o.Mech, "--auth-user", o.User)
		env = append(env, "SWAKS_OPT_auth_password="+o.Secret)
	}
	out, errOut, err := runTool(t, "", env, swaks, args...)
	r := swaksResult{Transcript: out + errOut}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.Exit = exit.ExitCode()
	default:
		t.Fatalf("swaks: %v\n%s", err, r.Transcript)
	}
	return r
}

// saw reports whether the server said a line starting with prefix (swaks
// prints server lines as "<- " or, under TLS, "<~ ", and a failure as
// "<** " or "<~* ").
func (r swaksResult) saw(prefix string) bool {
	for _, line := range strings.Split(r.Transcript, "\n") {
		for _, mark := range []string{"<- ", "<~ ", "<** ", "<~* "} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), mark); ok && strings.HasPrefix(rest, prefix) {
				return true
			}
		}
	}
	return false
}

// pythonSMTP is a small smtplib client driven by the environment. It prints
// one JSON object: ok, the stage that failed, the SMTP code and text of the
// failure, the refused recipients, and what EHLO offered. With PG_HOLD set it
// prints {"sent": true} after sending, then waits for the server to speak or
// close (passgate ending the session), and tries one more command.
const pythonSMTP = `
import json, os, smtplib, ssl, sys
env = os.environ
out = {"ok": False, "stage": "connect", "code": 0, "error": "", "refused": {}, "ehlo": []}
def fail(stage, e):
    out["stage"] = stage
    out["code"] = getattr(e, "smtp_code", 0)
    err = getattr(e, "smtp_error", None)
    out["error"] = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(e)
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        out["refused"] = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
try:
    ctx = ssl.create_default_context(cafile=env["PG_CAFILE"])
    mode = env["PG_MODE"]
    if mode == "tls":
        s = smtplib.SMTP_SSL(env["PG_HOST"], int(env["PG_PORT"]), local_hostname="python.client.test", context=ctx, timeout=60)
    else:
        s = smtplib.SMTP(env["PG_HOST"], int(env["PG_PORT"]), local_hostname="python.client.test", timeout=60)
        if mode == "starttls":
            s.starttls(context=ctx)
    s.ehlo()
    out["ehlo"] = sorted(k.upper() + " " + v for k, v in s.esmtp_features.items())
    out["stage"] = "auth"
    mech = env["PG_MECH"]
    if mech:
        s.user, s.password = env["PG_USER"], env["PG_SECRET"]
        s.auth(mech, s.auth_plain if mech == "PLAIN" else s.auth_login)
    out["stage"] = "send"
    with open(env["PG_FILE"], "rb") as f:
        data = f.read()
    out["refused"] = {k: [v[0], v[1].decode()] for k, v in s.sendmail(env["PG_FROM"], env["PG_TO"].split(","), data).items()}
    if env.get("PG_HOLD"):
        print(json.dumps({"sent": True}), flush=True)
        out["stage"] = "held"
        s.sock.settimeout(60)
        try:
            code, msg = s.getreply()
            out["code"], out["error"] = code, msg.decode()
        except smtplib.SMTPServerDisconnected as e:
            out["error"] = "closed: " + str(e)
        out["stage"] = "after close"
        s.noop()
        out["stage"] = "noop succeeded"
    else:
        s.quit()
        out["ok"] = True
except Exception as e:
    fail(out["stage"], e)
print(json.dumps(out), flush=True)
`

type pythonSMTPResult struct {
	OK      bool                      `json:"ok"`
	Stage   string                    `json:"stage"`
	Code    int                       `json:"code"`
	Error   string                    `json:"error"`
	Refused map[string][2]interface{} `json:"refused"`
	EHLO    []string                  `json:"ehlo"`
}

// pythonEnv is the environment of pythonSMTP for o.
func pythonEnv(t testing.TB, g *smtpGate, o sendOpts) []string {
	t.Helper()
	host, port := splitAddr(t, g.address(o.Via))
	return []string{"PG_HOST=" + host, "PG_PORT=" + port, "PG_MODE=" + o.Via, "PG_CAFILE=" + g.CertFile,
		"PG_MECH=" + o.Mech, "PG_USER=" + o.User, "PG_SECRET=" + o.Secret,
		"PG_FROM=" + o.From, "PG_TO=" + strings.Join(o.To, ","), "PG_FILE=" + o.File}
}

// runPythonSMTP sends o.File with python3 smtplib.
func runPythonSMTP(t testing.TB, g *smtpGate, o sendOpts) pythonSMTPResult {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	out, errOut, err := runTool(t, "", pythonEnv(t, g, o), python, "-c", pythonSMTP)
	if err != nil {
		t.Fatalf("python3 smtplib: %v\n%s", err, errOut)
	}
	var r pythonSMTPResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("python3 smtplib output %q: %v\n%s", out, err, errOut)
	}
	return r
}

// runCurlSMTP uploads o.File with curl (smtp:// with --ssl-reqd for
// STARTTLS, smtps:// for implicit TLS), verifying passgate's certificate.
// It returns curl's stderr, which holds the -v transcript.
func runCurlSMTP(t testing.TB, g *smtpGate, o sendOpts) (stderr string, err error) {
	t.Helper()
	curl := requireTool(t, "curl")
	url := "smtp://" + g.SubmitAddr + "/curl.client.test"
	args := []string{"-sS", "-v", "--max-time", "120", "-K", "-", "--cacert", g.CertFile,
		"--login-options", "AUTH=" + o.Mech, "--mail-from", o.From, "--upload-file", o.File}
	for _, to := range o.To {
		args = append(args, "--mail-rcpt", to)
	}
	switch o.Via {
	case viaStartTLS:
		args = append(args, "--ssl-reqd")
	case viaTLS:
		url = "smtps://" + g.SubmitsAddr + "/curl.client.test"
	}
	_, errOut, err := runTool(t, curlConfig(o.User, o.Secret), nil, curl, append(args, url)...)
	return errOut, err
}

// curlSaw reports whether curl's -v transcript shows the server saying a
// line starting with prefix.
func curlSaw(stderr, prefix string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "< "); ok && strings.HasPrefix(rest, prefix) {
			return true
		}
	}
	return false
}
