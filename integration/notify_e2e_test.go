package integration

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/rpc/jsonrpc"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/authn"
	pgaccount "github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/notify"
	"github.com/passgate/passgate/proxy/smtp"
	"github.com/passgate/passgate/proxy/upstream"
	"github.com/passgate/passgate/store/bolt"
)

// notifyCap is the [notify] max_per_hour of the end-to-end test: above
// what one account of the "events" subtest gets, below the 10 passwords
// of the "hourly cap" subtest.
const notifyCap = 8

// TestNotificationsEndToEnd is what an owner sees, with nothing made by
// hand: a real passgate serve with [notify] mails through its
// [smtp.upstream] (Dovecot submission, master-user login), which relays
// to a private Postfix delivering over LMTP into the owner's Dovecot
// INBOX, read back over IMAP. The events come from the CLI, the control
// socket and real clients (curl, Go) logging in. One Dovecot and one
// Postfix serve every subtest. With -v it logs the time from each action
// to its mail in the INBOX:
//
//	go test -count=1 -v -run TestNotificationsEndToEnd ./integration/
func TestNotificationsEndToEnd(t *testing.T) {
	d := startDovecot(t)
	startPostfixWith(t, postfixOpts{Listen: d.RelayAddr, LMTP: d.LMTPAddr})
	g := startSMTPGate(t, d, smtpOpts{Passgate: passgateOpts{Portal: true},
		Notify: notifyOpts{From: "passgate@example.org", MaxPerHour: notifyCap}})

	t.Run("events", func(t *testing.T) { testNotifiedEvents(t, d, g) })
	t.Run("french", func(t *testing.T) { testNotifiedInFrench(t, d, g) })
	t.Run("hourly cap", func(t *testing.T) { testNotifyHourlyCap(t, d, g) })
	t.Run("retirement", func(t *testing.T) { testRetirementNotified(t, d) })
	t.Run("retirement through serve", func(t *testing.T) { testRetirementThroughServe(t, d) })
}

// mailbox is a user's real Dovecot INBOX.
type mailbox struct {
	d              *Dovecot
	user, password string
}

// wait returns the mail whose subject or text holds marker, and how long
// after since it was in the INBOX (polled every 50 ms).
func (mb mailbox) wait(t *testing.T, marker string, since time.Time) notification {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if raw := fetchMatching(t, mb.d, mb.user, mb.password, marker); raw != nil {
			t.Logf("%-45q in the INBOX %4d ms after the action", marker, time.Since(since).Milliseconds())
			return parseNotification(t, raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail %q for %s after 30 s", marker, mb.user)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// count returns how many mails of the INBOX hold marker ("" for all).
func (mb mailbox) count(t *testing.T, marker string) int {
	t.Helper()
	n := 0
	for _, raw := range fetchAll(t, mb.d, mb.user, mb.password) {
		if mentions(raw, marker) {
			n++
		}
	}
	return n
}

// control runs an account service operation through serve's control
// socket, the door the CLI uses, for what the CLI has no command for.
func (pg *Passgate) control(t testing.TB, op string, args ...any) {
	t.Helper()
	if err := pg.controlErr(t, op, args...); err != nil {
		t.Fatalf("control socket %s: %v", op, err)
	}
}

// controlErr is control that returns the operation's error.
func (pg *Passgate) controlErr(t testing.TB, op string, args ...any) error {
	t.Helper()
	c, err := jsonrpc.Dial("unix", filepath.Join(pg.Dir, "passgate.sock"))
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	defer c.Close()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ Result json.RawMessage }
	call := struct {
		Op   string
		Args json.RawMessage
	}{op, raw}
	return c.Call("Accounts.Call", call, &reply)
}

// logLines counts the lines of serve's log that hold every one of parts.
func logLines(pg *Passgate, parts ...string) int {
	n := 0
	for _, line := range strings.Split(pg.Output(), "\n") {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

// Each event of one account, in the order a user meets them: created,
// first use (curl), drift (Go) and ten more drift logins told once,
// refused under block, all revoked by an admin, MFA reset by an admin
// (of the authenticator the owner set up in the portal; before that, a
// reset is refused and mails nothing).
func testNotifiedEvents(t *testing.T, d *Dovecot, g *smtpGate) {
	user, primary := d.newUser(t)
	g.addUser(t, user, primary, false)
	mb := mailbox{d, user, primary}
	want := "username: " + user + " has no authenticator enrolled: nothing to reset"
	if err := g.controlErr(t, "ResetMFA", user); err == nil || err.Error() != want {
		t.Errorf("ResetMFA before any enrolment: %v, want %q", err, want)
	}
	enrolInPortal(t, g.Passgate, user, primary)
	clients := deviceClients(t, g, user)
	curl, goClient := clients[0], clients[2]

	start := time.Now()
	p := g.createAppPassword(t, user, "phone <1>")
	m := mb.wait(t, `New app password "phone <1>"`, start)
	checkNotification(t, m, `New app password "phone <1>"`, "was created for your account", "phone <1>", "phone &lt;1&gt;")

	start = time.Now()
	curl.login(t, p.Password)
	m = mb.wait(t, "was used for the first time", start)
	checkNotification(t, m, `App password "phone <1>" was used for the first time`, "It is now bound to this device",
		"Network: 127.0.0.0/24", "127.0.0.0/24")
	if !strings.Contains(m.parts["text/plain"], "Service: imap") {
		t.Errorf("first-use mail does not name the service:\n%s", m.parts["text/plain"])
	}
	bound := g.listed(t, user)["phone <1>"].Bound.Device
	if bound.Client != "" && !strings.Contains(m.parts["text/plain"], "Client: "+bound.Client) {
		t.Errorf("first-use mail does not name the bound client %q:\n%s", bound.Client, m.parts["text/plain"])
	}
	// curl sends no IMAP ID: the TLS fingerprint, as the portal and
	// `apppass list` show it, is what tells this device from another.
	if !strings.Contains(m.parts["text/plain"], "TLS fingerprint: "+bound.TLS) || !strings.Contains(m.parts["text/html"], bound.TLS) {
		t.Errorf("first-use mail does not show the bound TLS fingerprint %s:\n%s", bound.TLS, m.parts["text/plain"])
	}

	start = time.Now()
	goClient.login(t, p.Password)
	m = mb.wait(t, "used from a new device", start)
	checkNotification(t, m, `App password "phone <1>" used from a new device`, "differs from the one it was first used on",
		"The login was allowed", "127.0.0.0/24")
	if drift := g.listed(t, user)["phone <1>"].Drift; len(drift) != 1 ||
		!strings.Contains(m.parts["text/plain"], "TLS fingerprint: "+drift[0].Device.TLS) {
		t.Errorf("drift mail does not show the new device's TLS fingerprint (drift %+v):\n%s", drift, m.parts["text/plain"])
	}

	// The same second client again and again: authn records its drift
	// once an hour, so one mail.
	const repeats = 10
	for range repeats {
		goClient.login(t, p.Password)
	}

	// Under block each refusal is recorded; the notifier tells the
	// owner once an hour.
	g.run(t, "apppass", "policy", user, p.ID, "block")
	const refusals = 4 // 5 refused logins: limits.max_failures_per_account_ip (5) stops the 6th
	start = time.Now()
	for range 1 + refusals {
		if err := goClient.try(t, p.Password); err == nil {
			t.Fatal("the Go client got in under block")
		}
	}
	m = mb.wait(t, "Login refused", start)
	checkNotification(t, m, `Login refused: app password "phone <1>" from a new device`, "was refused",
		"accept the new device in the portal", "127.0.0.0/24")
	// The notifier handles records in their order: the drift repeats were
	// handled before the first refusal was mailed; the refusals' repeats
	// wait for the log.
	if n := mb.count(t, "used from a new device"); n != 1 {
		t.Errorf("%d drift mails after %d more logins from the same client, want 1", n, repeats)
	}
	deadline := time.Now().Add(10 * time.Second)
	for logLines(g.Passgate, "notification not sent", user, "device-refused", "collapsed") < refusals &&
		time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := logLines(g.Passgate, "notification not sent", user, "device-refused", "collapsed"); n != refusals {
		t.Errorf("serve logged %d refusal notifications collapsed, want %d", n, refusals)
	}
	if n := mb.count(t, "Login refused"); n != 1 {
		t.Errorf("%d refusal mails after %d refused logins, want 1", n, 1+refusals)
	}

	start = time.Now()
	g.run(t, "apppass", "revoke-all", user)
	m = mb.wait(t, "All your app passwords were revoked", start)
	checkNotification(t, m, "All your app passwords were revoked", "An administrator revoked all the app passwords",
		"create new app passwords", "create new app passwords")

	start = time.Now()
	g.control(t, "ResetMFA", user)
	m = mb.wait(t, "two-step verification was reset", start)
	checkNotification(t, m, "Your two-step verification was reset", "An administrator reset the two-step verification",
		"Set up your authenticator again", "Set up your authenticator again")

	if n := mb.count(t, ""); n != 6 {
		t.Errorf("%d mails in the INBOX, want 6 (created, first use, drift, refused, revoked, MFA reset; none for the refused reset)", n)
	}
	if n := mb.count(t, "two-step verification was reset"); n != 1 {
		t.Errorf("%d reset mails, want 1: the refused reset was told", n)
	}
}

// An account whose language is French gets French.
func testNotifiedInFrench(t *testing.T, d *Dovecot, g *smtpGate) {
	user, primary := d.newUser(t)
	g.addUser(t, user, primary, false)
	g.control(t, "SetLanguage", user, "fr")
	mb := mailbox{d, user, primary}
	curl := deviceClients(t, g, user)[0]

	start := time.Now()
	p := g.createAppPassword(t, user, "Téléphone")
	m := mb.wait(t, "Nouveau mot de passe d'application", start)
	checkNotification(t, m, "Nouveau mot de passe d'application « Téléphone »", "a été créé pour votre compte",
		"Téléphone", "Téléphone")
	start = time.Now()
	curl.login(t, p.Password)
	m = mb.wait(t, "Première utilisation", start)
	checkNotification(t, m, "Première utilisation du mot de passe d'application « Téléphone »",
		"a été utilisé pour la première fois", "Réseau : 127.0.0.0/24", "127.0.0.0/24")
}

// More events than max_per_hour: the account gets max_per_hour mails,
// the rest are logged as rate-limited.
func testNotifyHourlyCap(t *testing.T, d *Dovecot, g *smtpGate) {
	user, primary := d.newUser(t)
	g.addUser(t, user, primary, false)
	mb := mailbox{d, user, primary}
	const created = notifyCap + 2
	for i := range created {
		g.createAppPassword(t, user, fmt.Sprintf("client %d", i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for logLines(g.Passgate, user, "app-password-created", "notification mailed")+
		logLines(g.Passgate, user, "app-password-created", "rate-limited") < created {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not handle the %d notifications of %s within 30 s", created, user)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := logLines(g.Passgate, user, "app-password-created", "rate-limited"); n != created-notifyCap {
		t.Errorf("%d notifications rate-limited, want %d", n, created-notifyCap)
	}
	mb.wait(t, fmt.Sprintf(`"client %d"`, notifyCap-1), time.Now())
	if n := mb.count(t, "New app password"); n != notifyCap {
		t.Errorf("%d mails for %d new app passwords, want max_per_hour = %d", n, created, notifyCap)
	}
}

// The retirement of an unused password on a controlled clock: the
// account service (serve's retirement job has no clock to set) with a
// real Notifier mailing through Dovecot submission into the INBOX. The
// warning comes WarnBefore ahead and names the removal day; the removal
// is told and the password is gone.
func testRetirementNotified(t *testing.T, d *Dovecot) {
	const day = 24 * time.Hour
	ctx := context.Background()
	user, primary := d.newUser(t)
	mb := mailbox{d, user, primary}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	db, err := bolt.Open(filepath.Join(t.TempDir(), "passgate.db"), bolt.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	quiet := slog.New(slog.DiscardHandler)
	n := &notify.Notifier{Accounts: db, Logger: quiet, Now: clock, Address: smtp.AliasesOf(db).Primary(""),
		Mail: &notify.Mail{From: "passgate@example.org", Upstream: &upstream.SMTP{Address: d.SubmitAddr,
			TLS: upstream.TLSStartTLS, Mode: upstream.ModeMaster, MasterUser: masterUser, MasterSecret: masterSecret,
			Logger: quiet, TLSConfig: &tls.Config{RootCAs: testcert.Pool(t, d.CertFile), ServerName: "localhost"}}}}
	n.Start()
	defer n.Close(ctx)
	svc := &pgaccount.Service{Store: db, Notify: n, Logger: quiet, Now: clock,
		Verifier: &authn.Verifier{Store: db, Params: authn.Params{MemoryKiB: 64, Time: 1, Threads: 1}, Now: clock, Logger: quiet},
		Retire:   pgaccount.Retirement{After: 90 * day, WarnBefore: 14 * day}}
	admin := pgaccount.Actor{Door: pgaccount.DoorCLI, Name: "root"}
	if err := svc.CreateUser(ctx, admin, pgaccount.NewUser{Username: user}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateAppPassword(ctx, admin, user, "old laptop", pgaccount.AppPasswordOptions{}); err != nil {
		t.Fatal(err)
	}
	retire := func(at time.Duration) pgaccount.RetireReport {
		t.Helper()
		now = t0.Add(at)
		rep, err := svc.RetireUnused(ctx, pgaccount.SystemRetire, false)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	if rep := retire(75 * day); len(rep.Warned)+len(rep.Retired) != 0 {
		t.Fatalf("day 75: %+v, want nothing yet", rep)
	}
	start := time.Now()
	if rep := retire(77 * day); len(rep.Warned) != 1 {
		t.Fatalf("day 77: %+v, want one warning", rep)
	}
	m := mb.wait(t, `Unused app password "old laptop" will be removed`, start)
	removal := t0.Add(90 * day).Format("Monday 2 January 2006")
	checkNotification(t, m, `Unused app password "old laptop" will be removed`, "It will be removed on "+removal,
		"unless it is used before", "unless it is used before")
	if rep := retire(80 * day); len(rep.Warned) != 0 {
		t.Errorf("day 80: warned again: %+v", rep)
	}

	start = time.Now()
	if rep := retire(90 * day); len(rep.Retired) != 1 {
		t.Fatalf("day 90: %+v, want the password retired", rep)
	}
	m = mb.wait(t, `Unused app password "old laptop" was removed`, start)
	checkNotification(t, m, `Unused app password "old laptop" was removed`, "because it had not been used for a long time",
		now.Format("2 January 2006"), now.Format("2 January 2006"))
	if left, err := db.ListAppPasswords(ctx, user); err != nil || len(left) != 0 {
		t.Errorf("after the removal %s has %d app passwords (%v), want none", user, len(left), err)
	}
	if got := mb.count(t, "old laptop"); got != 3 {
		t.Errorf("%d mails about the password, want 3 (created, warning, removed)", got)
	}
}

// retireReport is what `apppass retire --json` prints.
type retireReport struct {
	Retired, Warned []struct {
		Username string    `json:"username"`
		Name     string    `json:"name"`
		RetireAt time.Time `json:"retire_at"`
	}
}

// The same through serve, on the real clock with an idle time of
// seconds (serve's job has no clock to set, and the config takes Go
// durations): authn.unused_after reaches the service that the CLI's
// `apppass retire` runs on, its warning and removal reach the notifier,
// and the removed password no longer logs in. This installation writes
// in French ([notify] language) to accounts that chose no language.
func testRetirementThroughServe(t *testing.T, d *Dovecot) {
	// The warning period is long (5.5 s) so that the first retire falls in
	// it however slowly the CLI starts: with 1 s to 4 s the creation and
	// the retire had 2.8 s together on a busy machine.
	const after, warnBefore = 6 * time.Second, 5500 * time.Millisecond
	g := newSMTPGate(t, d, smtpOpts{Notify: notifyOpts{From: "passgate@example.org", Language: "fr"}})
	g.editConfig(t, "argon_threads = 1\n", fmt.Sprintf("argon_threads = 1\nunused_after = %q\nunused_warn_before = %q\n",
		after, warnBefore))
	g.start(t)
	user, primary := d.newUser(t)
	g.addUser(t, user, primary, false)
	mb := mailbox{d, user, primary}
	p := g.createAppPassword(t, user, "old laptop")
	created := time.Now() // after the server's creation time
	retire := func() retireReport {
		t.Helper()
		var rep retireReport
		if out := g.run(t, "apppass", "retire", "--json"); json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("apppass retire --json: %q", out)
		}
		return rep
	}

	// In the warning period (from 0.5 s after creation to 6 s).
	time.Sleep(time.Until(created.Add(after - warnBefore + 200*time.Millisecond)))
	start := time.Now()
	rep := retire()
	if len(rep.Warned) != 1 || rep.Warned[0].Username != user || len(rep.Retired) != 0 {
		t.Fatalf("apppass retire in the warning period: %+v, want %s warned", rep, user)
	}
	m := mb.wait(t, "« old laptop » va être supprimé", start)
	removal := rep.Warned[0].RetireAt.UTC()
	checkNotification(t, m, "Le mot de passe d'application inutilisé « old laptop » va être supprimé",
		"Il sera supprimé le", fmt.Sprintf(" %d ", removal.Day()), fmt.Sprintf(" %d ", removal.Year()))

	time.Sleep(time.Until(created.Add(after + 200*time.Millisecond)))
	start = time.Now()
	if rep := retire(); len(rep.Retired) != 1 || rep.Retired[0].Username != user {
		t.Fatalf("apppass retire after unused_after: %+v, want %s's password retired", rep, user)
	}
	m = mb.wait(t, "« old laptop » a été supprimé", start)
	checkNotification(t, m, "Le mot de passe d'application inutilisé « old laptop » a été supprimé",
		"depuis longtemps", "Créez-en un nouveau", "Créez-en un nouveau")
	if err := deviceClients(t, g, user)[0].try(t, p.Password); err == nil {
		t.Errorf("the retired password still logs in")
	}
}
