package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2"
	"github.com/pquerna/otp/totp"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/internal/testslapd"
)

// Issue 11 end to end: accounts from the operator's directory (a private
// slapd, and the Dovecot's own auth service), through the real binary, a
// real browser and real mail clients.

const ldapSuffix = "dc=example,dc=org"

// localPart is the part of a mail address before '@'.
func localPart(addr string) string { l, _, _ := strings.Cut(addr, "@"); return l }

// ldapDirectoryConfig is the README's OpenLDAP example pointed at s over
// LDAPS, with a short cache so that the test sees it expire.
func ldapDirectoryConfig(s *testslapd.Server, cache time.Duration) []string {
	return []string{
		`[directory]`,
		`kind = "ldap"`,
		`default_domain = "example.org"`,
		fmt.Sprintf(`cache = "%s"`, cache),
		`[directory.ldap]`,
		`preset = "openldap"`,
		fmt.Sprintf(`url = %q`, s.LDAPSURL),
		fmt.Sprintf(`ca_file = %q`, s.CertFile),
		fmt.Sprintf(`bind_dn = %q`, testslapd.ServiceDN(ldapSuffix)),
		fmt.Sprintf(`bind_password = %q`, testslapd.ServicePassword),
		fmt.Sprintf(`base_dn = "ou=people,%s"`, ldapSuffix),
		`user_filter = "(&(objectClass=inetOrgPerson)(|(mail={user})(uid={local})))"`,
		fmt.Sprintf(`mfa_group = %q`, testslapd.GroupDN(ldapSuffix, "mfa")),
		fmt.Sprintf(`admin_group = %q`, testslapd.GroupDN(ldapSuffix, "admins")),
		fmt.Sprintf(`disabled_group = %q`, testslapd.GroupDN(ldapSuffix, "disabled")),
	}
}

// binds counts the simple binds slapd logged for dn: the primary-password
// checks passgate made for that user.
func binds(s *testslapd.Server, dn string) int {
	return strings.Count(strings.ToLower(s.Log()), strings.ToLower(`BIND dn="`+dn+`" method=128`))
}

// TestDirectoryLDAPEndToEnd: a user of the MFA group in slapd signs in to
// the portal in Chromium with the directory's password and must enrol
// TOTP, creates an app password, reads mail with it through passgate (curl,
// imaplib) and sends with it (swaks); the directory never sees the app
// password. A second user of the MFA group gets [ALERT] for the primary
// password and is not provisioned. Disabled in slapd, the first user is
// refused within the directory cache time and her open IDLE session ends.
func TestDirectoryLDAPEndToEnd(t *testing.T) {
	curl := requireTool(t, "curl")
	requireTool(t, "swaks")
	requireTool(t, "/usr/bin/python3")
	requireTool(t, "chromium")
	d, sink := sharedSink(t)
	alice, _ := d.newUser(t)
	bob, _ := d.newUser(t)
	carol, _ := d.newUser(t)
	const alicePW, bobPW, carolPW = "Alice's LDAP secret 1", "Bob's LDAP secret 2", "Carol's LDAP secret 3"
	for _, pw := range []string{alicePW, bobPW, carolPW} {
		leaks.secret(pw)
	}
	s := testslapd.Start(t, testslapd.Options{Suffix: ldapSuffix, LDIF: testslapd.People(ldapSuffix,
		testslapd.Person{UID: localPart(alice), Mail: alice, Password: alicePW, MFA: true},
		testslapd.Person{UID: localPart(bob), Mail: bob, Password: bobPW, MFA: true},
		testslapd.Person{UID: localPart(carol), Mail: carol, Password: carolPW})})
	aliceDN := testslapd.PersonDN(ldapSuffix, localPart(alice))

	const cache = 3 * time.Second
	g := newSMTPGate(t, d, smtpOpts{Passgate: passgateOpts{AllowCleartext: true, Portal: true}})
	appendConfig(t, g.Passgate, ldapDirectoryConfig(s, cache)...)
	g.start(t)
	d.deliver(t, alice, testMessage(alice, "for a directory user", "hello from the directory test"))
	if users := g.users(t); len(users) != 0 {
		t.Fatalf("accounts before any sign-in: %v", users)
	}

	// The portal: sign in as "<uid>" (default_domain) with the LDAP
	// password; the MFA group makes the first sign-in an enrolment.
	w := newWalkBrowser(t, g.Portal)
	w.dir = filepath.Join(filepath.Dir(w.dir), "directory-ldap")
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("screenshots in %s:\n%s", w.dir, strings.Join(w.listed, "\n")) }()
	w.load("/signin", "Sign in", chromedp.Navigate(g.Portal+"signin"))
	w.run(w.fill("#username", localPart(alice)), w.fill("#password", alicePW))
	w.load("/mfa/setup", "Set up two-step verification", w.click(`form[action="/signin"] button[type=submit]`))
	w.shot("mfa-required", "a directory user of the MFA group, first sign-in: enrolment required")
	secret := strings.Join(strings.Fields(w.text("#totp-secret")), "")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.run(w.fill("#code", code))
	w.load("/mfa/setup", "Save your recovery codes", w.click(`form[action="/mfa/setup"] button`))
	w.load("/app-passwords", "App passwords", w.click(`a[href="/app-passwords"].primary`))
	w.run(w.fill("#name", "Thunderbird"))
	for _, scope := range []string{"imap", "smtp"} {
		sel := `input[name=scope][value=` + scope + `]`
		if !walkGet(w, scope+" checkbox", chromedp.JavascriptAttribute[bool](chromedp.CSS(sel), "checked")) {
			w.run(w.click(sel))
		}
	}
	w.load("/app-passwords", "Your new app password", w.click(`form[action="/app-passwords"] button[type=submit]`))
	// What the Copy button copies (the page shows the groups on lines of
	// their own).
	appPW := walkGet(w, "copy button", chromedp.AttributeValue(chromedp.CSS("button[data-copy]"), "data-copy")).Value
	if appPW != authn.NormalizeSecret(w.text("#app-password")) || len(appPW) != authn.AppPasswordLen {
		t.Fatalf("app password on the page: %q", appPW)
	}
	leaks.secret(appPW)
	w.shot("app-password", "the directory user's new app password")
	w.load("/account", "Account", chromedp.Navigate(g.Portal+"account"))
	if txt := w.text("#pw-directory"); !strings.Contains(txt, "organisation") {
		t.Errorf("the account page offers to change a directory password: %q", w.text("main"))
	}
	users := g.users(t)
	if u, ok := users[alice]; !ok || u.HasPassword || !u.MFA || u.Directory != "ldap" {
		t.Fatalf("after the sign-in: %+v; want %s provisioned with MFA and no primary password", users, alice)
	}
	bindsAfterSignIn := binds(s, aliceDN)
	if bindsAfterSignIn != 1 {
		t.Errorf("slapd saw %d binds as %s for one sign-in", bindsAfterSignIn, aliceDN)
	}

	// Read with the app password: curl (AUTHENTICATE PLAIN), imaplib
	// (LOGIN), and hold an IDLE session (go-imap).
	out, errOut, err := runTool(t, curlConfig(alice, appPW), nil, curl, "-sS", "--max-time", "20", "-K", "-",
		"--login-options", "AUTH=PLAIN", "imap://"+g.IMAPAddr+"/INBOX;UID=1")
	if err != nil || !strings.Contains(out, "hello from the directory test") {
		t.Fatalf("curl with the app password: %v %s\n%s", err, errOut, out)
	}
	if r := runPython(t, g.Passgate, viaTLS, "login", alice, appPW); !r.OK || r.Exists != 1 {
		t.Fatalf("imaplib with the app password: %+v", r)
	}
	idle := idling(t, g.Passgate, alice, appPW)

	// Send with it: swaks, AUTH PLAIN over implicit TLS.
	rcpt := uniqueRcpt("directory")
	msg := smtpMessage(alice, rcpt, "sent by a directory user")
	if r := runSwaks(t, g, sendOpts{Via: viaTLS, Mech: "PLAIN", User: alice, Secret: appPW, From: alice,
		To: []string{rcpt}, File: writeMessage(t, msg)}); r.Exit != 0 {
		t.Fatalf("swaks with the app password: exit %d\n%s", r.Exit, r.Transcript)
	}
	checkRelayed(t, sink.take(t, rcpt), msg, alice, rcpt)
	if n := binds(s, aliceDN); n != bindsAfterSignIn {
		t.Errorf("app-password logins made %d binds as %s: the app password reached the directory", n-bindsAfterSignIn, aliceDN)
	}

	// The primary password for mail: [ALERT], for alice and for bob, who
	// never signed in and is not provisioned by it.
	for _, u := range []struct{ user, pw string }{{alice, alicePW}, {bob, bobPW}} {
		r := runPython(t, g.Passgate, viaTLS, "login", u.user, u.pw)
		if r.OK || !strings.Contains(r.Error, "[ALERT]") || !strings.Contains(r.Error, g.Portal) {
			t.Fatalf("imaplib with %s's directory password: %+v, want [ALERT] naming %s", u.user, r, g.Portal)
		}
	}
	if _, ok := g.users(t)[bob]; ok {
		t.Errorf("%s was provisioned by a refused mail login", bob)
	}

	// Disable alice in slapd: her logins are refused, and her IDLE session
	// ends, within the cache time.
	disabled := time.Now()
	s.SetMember(t, "disabled", aliceDN, true)
	refusedAfter := waitLoginRefused(t, g.Passgate, alice, appPW, cache+closeDeadline)
	endedAfter := idle.waitClosed(t).Sub(disabled)
	t.Logf("disabled in slapd: logins refused %v later, the IDLE session ended %v later (directory.cache %v)",
		refusedAfter.Round(time.Millisecond), endedAfter.Round(time.Millisecond), cache)

	// carol is in no group: her primary password works for mail, and that
	// login provisions her.
	if r := runPython(t, g.Passgate, viaTLS, "login", carol, carolPW); !r.OK {
		t.Fatalf("imaplib with carol's directory password: %+v", r)
	}
	if u, ok := g.users(t)[carol]; !ok || u.HasPassword || u.MFA {
		t.Fatalf("carol after a mail login: %+v, %v; want provisioned, no primary password, no MFA", u, ok)
	}
	// The operator's table says where her account comes from.
	if out := g.run(t, "user", "list"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(carol) + `\s.*in directory.*\sldap\s`).MatchString(out) {
		t.Errorf("user list does not show %s as an LDAP account:\n%s", carol, out)
	}
	carolApp := g.createAppPassword(t, carol, "laptop")
	g.login(t, viaTLS, carol, carolApp.Password)

	// slapd goes away: the cached state serves for its time, then logins
	// fail temporarily (NO [UNAVAILABLE], 454 4.7.0), never accepted.
	s.Stop()
	unavailableAfter := waitUnavailable(t, g.Passgate, carol, carolApp.Password, cache+closeDeadline)
	t.Logf("slapd stopped: app-password logins unavailable %v later (directory.cache %v)", unavailableAfter.Round(time.Millisecond), cache)
	wantCode(t, g.loginError(t, viaTLS, carol, carolPW), imap.ResponseCodeUnavailable, "")
	rcpt = uniqueRcpt("directory-down")
	r := runSwaks(t, g, sendOpts{Via: viaTLS, Mech: "PLAIN", User: carol, Secret: carolApp.Password, From: carol,
		To: []string{rcpt}, File: writeMessage(t, smtpMessage(carol, rcpt, "directory down"))})
	if r.Exit == 0 || !r.saw("454 4.7.0") {
		t.Fatalf("swaks with slapd down: exit %d, want 454 4.7.0:\n%s", r.Exit, r.Transcript)
	}
	assertNoSecrets(t, g.Output(), appPW, alicePW, bobPW, carolPW, carolApp.Password, testslapd.ServicePassword)
}

// waitUnavailable retries an IMAP login every 100 ms until passgate
// answers NO [UNAVAILABLE]; a login accepted meanwhile is fine (the cached
// state), any other refusal fails the test, as does waiting beyond limit.
func waitUnavailable(t *testing.T, pg *Passgate, user, secret string, limit time.Duration) time.Duration {
	t.Helper()
	return waitRefusedWith(t, pg, user, secret, imap.ResponseCodeUnavailable, limit)
}

// waitLoginRefused retries an IMAP login every 100 ms until passgate refuses it
// with AUTHENTICATIONFAILED, and returns how long that took; it fails the
// test after limit (a bound for a hang, not a performance threshold).
func waitLoginRefused(t *testing.T, pg *Passgate, user, secret string, limit time.Duration) time.Duration {
	t.Helper()
	return waitRefusedWith(t, pg, user, secret, imap.ResponseCodeAuthenticationFailed, limit)
}

// waitRefusedWith retries an IMAP login every 100 ms until passgate
// refuses it with code and returns how long that took; a refusal with
// another code fails the test, as do logins still accepted after limit.
func waitRefusedWith(t *testing.T, pg *Passgate, user, secret string, code imap.ResponseCode, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		c := pg.dial(t, viaTLS, nil)
		err := c.Login(user, secret).Wait()
		c.Close()
		if err != nil {
			var ierr *imap.Error
			if !errors.As(err, &ierr) || ierr.Code != code {
				t.Fatalf("login refused with %v, want NO [%s]", err, code)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("logins of %s still accepted %v later, want NO [%s]", user, limit, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDirectoryDovecotEndToEnd: passgate asks the Dovecot's own auth
// service (its auth-client and auth-userdb sockets): a mailbox user that
// passgate has never heard of logs in with the primary password (imaplib)
// and is provisioned, without a primary password in passgate; an app
// password created for it works, and wrong or unknown logins are refused
// and provision nothing.
func TestDirectoryDovecotEndToEnd(t *testing.T) {
	requireTool(t, "/usr/bin/python3")
	d := sharedDovecot(t)
	user, primary := d.newUser(t)
	leaks.secret(primary)
	d.deliver(t, user, testMessage(user, "for a dovecot-auth user", "hello"))
	pg := newPassgate(t, d, passgateOpts{AllowCleartext: true})
	appendConfig(t, pg,
		`[directory]`,
		`kind = "dovecot"`,
		`[directory.dovecot]`,
		fmt.Sprintf(`auth_socket = %q`, filepath.Join(d.Dir, "run", "auth-client")),
		fmt.Sprintf(`userdb_socket = %q`, filepath.Join(d.Dir, "run", "auth-userdb")),
	)
	pg.serve(t)

	if r := runPython(t, pg, viaTLS, "login", user, primary+"x"); r.OK || !strings.Contains(r.Error, "AUTHENTICATIONFAILED") {
		t.Fatalf("a wrong password: %+v", r)
	}
	if r := runPython(t, pg, viaTLS, "login", "nobody-here@example.org", primary); r.OK {
		t.Fatalf("an unknown user logged in: %+v", r)
	}
	if users := pg.users(t); len(users) != 0 {
		t.Fatalf("accounts after failed logins: %v", users)
	}
	if r := runPython(t, pg, viaTLS, "login", user, primary); !r.OK || r.Exists != 1 {
		t.Fatalf("primary password through Dovecot's auth service: %+v", r)
	}
	if u, ok := pg.users(t)[user]; !ok || u.HasPassword || u.Directory != "dovecot" {
		t.Fatalf("after the login: %+v; want %s provisioned without a primary password", pg.users(t), user)
	}
	p := pg.createAppPassword(t, user, "phone")
	if r := runPython(t, pg, viaTLS, "plain", user, p.Password); !r.OK || r.Exists != 1 {
		t.Fatalf("app password of a provisioned account: %+v", r)
	}
	assertNoSecrets(t, pg.Output(), primary, p.Password)
}
