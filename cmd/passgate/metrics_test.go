package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/demomail"
	"github.com/passgate/passgate/internal/testtool"
)

const (
	mUser   = "alice@example.org"
	mMaster = "proxy-master"
)

// metricsWorld is a running passgate with IMAP and SMTP in front of the
// demo's in-process mail servers, metrics on, and one user with an app
// password.
type metricsWorld struct {
	l        listening
	path     string
	password string
}

func startMetricsWorld(t *testing.T, extra string) metricsWorld {
	t.Helper()
	mail, err := demomail.Start(mMaster, "upstream-master-secret", []string{mUser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mail.Close() })
	path := testConfig(t)
	// testConfig's [imap] comes first; a second [imap.upstream] would be a
	// duplicate table, so the upstreams go in a fresh file.
	text := fmt.Sprintf(`[imap]
listen = "127.0.0.1:0"
allow_cleartext = true
[imap.upstream]
address = %q
login = "login-master"
master_user = %q
master_secret = "upstream-master-secret"
[smtp]
listen = "127.0.0.1:0"
allow_cleartext = true
[smtp.upstream]
address = %q
login = "master"
master_user = %q
master_secret = "upstream-master-secret"
[metrics]
listen = "127.0.0.1:0"
`, mail.IMAPAddr(), mMaster, mail.SMTPAddr(), mMaster)
	rest := readFile(t, path)
	rest = rest[strings.Index(rest, "[store]"):]
	writeFile(t, path, text+rest+extra)
	mustCLI(t, "", "user", "add", mUser, "--mfa", "--config", path)
	out := mustCLI(t, "", "apppass", "create", mUser, "--name", "phone", "--config", path)
	m := regexp.MustCompile(`[a-km-np-z2-9]{4} [a-km-np-z2-9]{4} [a-km-np-z2-9]{4} [a-km-np-z2-9]{4}`).FindString(out)
	if m == "" {
		t.Fatalf("no app password in %q", out)
	}
	return metricsWorld{l: startServe(t, path), path: path, password: m}
}

// imapSession logs in, says LOGOUT through the relay and returns the login
// reply.
func imapSession(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, r := dialIMAP(t, addr)
	defer c.Close()
	reply := imapCmd(t, c, r, "a", fmt.Sprintf("LOGIN %q %q", user, pass))
	if strings.HasPrefix(reply, "a OK") {
		imapCmd(t, c, r, "b", "LOGOUT")
	}
	return reply
}

func dialIMAP(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return c, r
}

// imapCmd sends one tagged command and returns its tagged reply.
func imapCmd(t *testing.T, c net.Conn, r *bufio.Reader, tag, cmd string) string {
	t.Helper()
	fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s reply: %v", cmd, err)
		}
		if strings.HasPrefix(line, tag+" ") {
			return strings.TrimSpace(line)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample returns the value of the series named exactly series (name and
// labels as the text format writes them), or 0 when it is absent.
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// TestMetricsCountScriptedLogins: after 3 good IMAP logins, 2 bad ones and
// 1 that the guard blocks, and one SMTP message, the scraped metrics pass
// `promtool check metrics` and say exactly that; health and readiness
// answer, on the listener and through `passgate health`.
func TestMetricsCountScriptedLogins(t *testing.T) {
	promtool := testtool.Require(t, "promtool", "prometheus")
	w := startMetricsWorld(t, `[limits]
max_failures_per_account_ip = 2
tarpit_base = "10ms"
tarpit_max = "20ms"
`)
	imapAddr := w.l.IMAP.String()
	for i := range 3 {
		if r := imapSession(t, imapAddr, mUser, w.password); !strings.HasPrefix(r, "a OK") {
			t.Fatalf("good login %d: %q", i, r)
		}
	}
	for i := range 2 {
		if r := imapSession(t, imapAddr, mUser, fmt.Sprintf("wrong-%d", i)); !strings.Contains(r, "AUTHENTICATIONFAILED") {
			t.Fatalf("bad login %d: %q", i, r)
		}
	}
	if r := imapSession(t, imapAddr, mUser, "wrong-2"); !strings.Contains(r, "Too many failed logins") {
		t.Fatalf("third bad login: %q, want the rate-limit reply", r)
	}

	base := "http://" + w.l.Metrics.String()
	code, text := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	login := `passgate_logins_total{mechanism="login",protocol="imap",result="%s"}`
	for _, c := range []struct {
		series string
		want   float64
	}{
		{fmt.Sprintf(login, "ok"), 3},
		{fmt.Sprintf(login, "bad-secret"), 2},
		{fmt.Sprintf(login, "rate-limited"), 1},
		{`passgate_guard_blocks_total{limit="account-address"}`, 1},
		// One argon2id for the first good login, then the cache; one per
		// wrong secret; none for the blocked attempt.
		{`passgate_argon2id_duration_seconds_count`, 3},
		{`passgate_auth_cache_hits_total`, 2},
		{`passgate_tarpit_delay_seconds_count`, 3},
		{`passgate_upstream_login_duration_seconds_count{protocol="imap"}`, 3},
		{`passgate_relayed_bytes_total{direction="client_to_upstream",protocol="imap"}`, 3 * float64(len("b LOGOUT\r\n"))},
		{`passgate_build_info{goversion="` + goVersion(t, text) + `",version="` + metricsVersion() + `"}`, 1},
	} {
		if got := sample(t, text, c.series); got != c.want {
			t.Errorf("%s = %v, want %v", c.series, got, c.want)
		}
	}
	// The store is asked for the account's app passwords, and the guard's
	// counters are reserved, at every attempt that is not blocked; no call
	// fails.
	for _, op := range []string{"find_app_password", "counter_incr_many", "get_account"} {
		if got := sample(t, text, `passgate_store_call_duration_seconds_count{operation="`+op+`"}`); got <= 0 {
			t.Errorf("no store calls %s counted", op)
		}
	}
	if strings.Contains(text, "\npassgate_store_errors_total{") {
		t.Errorf("store errors counted:\n%s", grepLines(text, "passgate_store_errors_total"))
	}
	t.Logf("store calls:\n%s", grepLines(text, "passgate_store_call_duration_seconds_count"))
	if got := sample(t, text, `passgate_relayed_bytes_total{direction="upstream_to_client",protocol="imap"}`); got <= 0 {
		t.Errorf("no bytes counted from the upstream (the BYE and OK of 3 LOGOUTs)")
	}
	for _, secret := range []string{w.password, mUser, "wrong-0", "127.0.0.1"} {
		if strings.Contains(text, secret) {
			t.Errorf("the metrics hold %q", secret)
		}
	}

	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK || !strings.HasPrefix(body, "ready") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	_, text = httpGet(t, base+"/metrics")
	for _, check := range []string{"store", "imap_upstream", "smtp_upstream"} {
		if got := sample(t, text, `passgate_ready{check="`+check+`"}`); got != 1 {
			t.Errorf("passgate_ready{check=%q} = %v, want 1", check, got)
		}
	}
	// `passgate health` reads the address from the config file; port 0
	// there, so give it one naming the bound port.
	cfgCopy := strings.Replace(readFile(t, w.path), `[metrics]
listen = "127.0.0.1:0"`, fmt.Sprintf("[metrics]\nlisten = %q", w.l.Metrics.String()), 1)
	hpath := w.path + ".health.toml"
	writeFile(t, hpath, cfgCopy)
	if out := mustCLI(t, "", "health", "--config", hpath); strings.TrimSpace(out) != "ready" {
		t.Errorf("passgate health printed %q", out)
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func goVersion(t *testing.T, text string) string {
	m := regexp.MustCompile(`passgate_build_info\{goversion="([^"]+)"`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no passgate_build_info")
	}
	return m[1]
}

// TestReadyzReportsDeadUpstream: with nothing listening at the upstream,
// /readyz answers 503 naming it, and `passgate health` fails.
func TestReadyzReportsDeadUpstream(t *testing.T) {
	path := testConfig(t)
	port, err := testtool.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	appendConfig(t, path, fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", port))
	dead := strings.Replace(readFile(t, path), `address = "127.0.0.1:9"`, `address = "127.0.0.1:1"
dial_timeout = "1s"`, 1)
	writeFile(t, path, dead)
	l := startServe(t, path)
	code, body := httpGet(t, "http://"+l.Metrics.String()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "imap_upstream:") || strings.Contains(body, "store:") {
		t.Errorf("/readyz: %d %q, want 503 naming imap_upstream only", code, body)
	}
	if code, _ := httpGet(t, "http://"+l.Metrics.String()+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200 (alive though not ready)", code)
	}
	if _, _, err := cli(t, "", "health", "--config", path); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("passgate health: %v, want a 503 error", err)
	}
	if out, _, err := cli(t, "", "health", "--live", "--config", path); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("passgate health --live: %q, %v", out, err)
	}
}

// TestSessionLimitPerUser: with limits.max_sessions_per_user = 2 and two
// IMAP sessions open, a third IMAP login gets NO [LIMIT] and an SMTP
// login 421 4.7.0 (connection closed); both are audited session-limit;
// once a session ends, a login gets in again.
func TestSessionLimitPerUser(t *testing.T) {
	w := startMetricsWorld(t, "[limits]\nmax_sessions_per_user = 2\n")
	imapAddr := w.l.IMAP.String()
	var held []net.Conn
	for i := range 2 {
		c, r := dialIMAP(t, imapAddr)
		defer c.Close()
		if reply := imapCmd(t, c, r, "a", fmt.Sprintf("LOGIN %q %q", mUser, w.password)); !strings.HasPrefix(reply, "a OK") {
			t.Fatalf("session %d: %q", i, reply)
		}
		held = append(held, c)
	}
	if r := imapSession(t, imapAddr, mUser, w.password); !strings.HasPrefix(r, "a NO [LIMIT]") {
		t.Errorf("third IMAP session: %q, want a NO [LIMIT]", r)
	}
	if r := smtpAuthPlain(t, w.l.SMTP.String(), mUser, w.password); !strings.HasPrefix(r, "421 4.7.0") {
		t.Errorf("SMTP while at the limit: %q, want 421 4.7.0", r)
	}
	_, text := httpGet(t, "http://"+w.l.Metrics.String()+"/metrics")
	for _, series := range []string{
		`passgate_logins_total{mechanism="login",protocol="imap",result="session-limit"}`,
		`passgate_logins_total{mechanism="plain",protocol="smtp",result="session-limit"}`,
	} {
		if got := sample(t, text, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
	if got := sample(t, text, `passgate_sessions_open{protocol="imap"}`); got != 2 {
		t.Errorf("passgate_sessions_open{imap} = %v, want 2", got)
	}
	activity := mustCLI(t, "", "user", "activity", mUser, "--config", w.path)
	if n := strings.Count(activity, "session-limit"); n != 2 {
		t.Errorf("user activity shows %d session-limit records, want 2:\n%s", n, activity)
	}
	held[0].Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := imapSession(t, imapAddr, mUser, w.password)
		if strings.HasPrefix(r, "a OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a session ended: %q", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := writeAll(path, []byte(text)); err != nil {
		t.Fatal(err)
	}
}

func readAll(path string) ([]byte, error)  { return os.ReadFile(path) }
func writeAll(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
