package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/passgate/passgate/authn/account"
	"github.com/passgate/passgate/config"
	"github.com/passgate/passgate/internal/demomail"
	"github.com/passgate/passgate/store/bolt"
)

// The demo runs the whole product on one machine with nothing installed: a
// temporary bolt store, an in-process IMAP server (go-imap's imapmemserver)
// as the upstream, logged into with a Dovecot-style master login
// (login-master mode), and an MFA user with an app password.

const (
	demoUser      = "alice@example.org"
	demoPlainUser = "bob@example.org"
	demoMaster    = "demo-master"
)

func cmdDemo(ctx context.Context, e env, args []string) error {
	fs, _ := newFlags("demo")
	listen := fs.String("listen-imap", "127.0.0.1:1143", "address of the demo's IMAP listener")
	listenSMTP := fs.String("listen-smtp", "127.0.0.1:1587", "address of the demo's SMTP submission listener")
	listenPortal := fs.String("listen-portal", "127.0.0.1:8080", "address of the demo's web portal")
	listenMetrics := fs.String("listen-metrics", "127.0.0.1:9145", "address of the demo's metrics and health endpoints")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	addrFlags := []flagAddr{{"--listen-imap", listen}, {"--listen-smtp", listenSMTP},
		{"--listen-portal", listenPortal}, {"--listen-metrics", listenMetrics}}
	if err := freeDefaults(e, fs, addrFlags); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "passgate-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	masterSecret := rand.Text()
	mail, err := demomail.Start(demoMaster, masterSecret, []string{demoUser, demoPlainUser})
	if err != nil {
		return err
	}
	defer mail.Close()

	if err := fixedPorts(addrFlags); err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "portal.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(randomBytes(32))+"\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfgPath := filepath.Join(dir, "passgate.toml")
	addrs := demoAddrs{*listen, *listenSMTP, *listenPortal, *listenMetrics, mail.IMAPAddr().String(), mail.SMTPAddr().String(), keyFile}
	if err := writeDemoConfig(cfgPath, addrs, masterSecret); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	creds, err := seedDemo(ctx, cfg)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, func(l listening) { printDemo(e, cfgPath, l, creds) })
}

// demoAddrs are the demo's listeners, its in-process upstreams and the
// portal's key file.
type demoAddrs struct{ imap, smtp, portal, metrics, imapUp, smtpUp, portalKey string }

func writeDemoConfig(path string, a demoAddrs, masterSecret string) error {
	text := fmt.Sprintf(`# Written by 'passgate demo'; removed when the demo stops.
[imap]
listen = %[1]q
allow_cleartext = true   # loopback demo only: no TLS certificate

[imap.upstream]
address = %[3]q
login = "login-master"
master_user = %[5]q
master_secret = %[6]q

[smtp]
listen = %[2]q
allow_cleartext = true

[smtp.upstream]
address = %[4]q
login = "master"
master_user = %[5]q
master_secret = %[6]q

[portal]
# Plain HTTP is allowed for a loopback portal only.
url = "http://%[7]s"
listen = %[7]q
key_file = %[8]q
imap_host = "127.0.0.1"
smtp_host = "127.0.0.1"

[limits]
# Quick feedback when trying wrong passwords in the demo.
tarpit_base = "100ms"
tarpit_max = "1s"
# One person tries it: no need for the production default of 10000
# connections per protocol (nor the open files it needs).
max_connections = 1000

[metrics]
listen = %[9]q

[notify]
# Notifications arrive in the demo users' own INBOX, through the demo's
# submission server.
from = "passgate@example.org"
`, a.imap, a.smtp, a.imapUp, a.smtpUp, demoMaster, masterSecret, a.portal, a.portalKey, a.metrics)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("demo: write config: %w", err)
	}
	return nil
}

type demoCreds struct {
	appPassword, primary, plainPrimary string
	totpSecret                         string
}

// seedDemo creates the demo accounts in the store of cfg.
func seedDemo(ctx context.Context, cfg *config.Config) (demoCreds, error) {
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{})
	if err != nil {
		return demoCreds{}, fmt.Errorf("demo: %w", err)
	}
	defer db.Close()
	quiet := slog.New(slog.DiscardHandler)
	v := newVerifier(cfg, db, quiet)
	svc := &account.Service{Store: db, Verifier: v, Logger: quiet}
	who := cliActor()
	c := demoCreds{primary: "correct horse battery", plainPrimary: "bob's primary password"}
	if err := svc.CreateUser(ctx, who, account.NewUser{Username: demoUser, Password: c.primary, MFA: true}); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	if err := svc.CreateUser(ctx, who, account.NewUser{Username: demoPlainUser, Password: c.plainPrimary}); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	p, err := svc.CreateAppPassword(ctx, who, demoUser, "Outlook", account.AppPasswordOptions{})
	if err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	c.appPassword = p.Password
	// Enrol alice's authenticator so that she can sign in to the portal.
	c.totpSecret, _, err = newPortal(cfg, &core{st: db, v: v, accounts: svc}, quiet).EnrolTOTP(ctx, demoUser)
	if err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	return c, nil
}

func printDemo(e env, cfgPath string, l listening, c demoCreds) {
	addr := l.IMAP.String()
	fmt.Fprintf(e.stdout, `passgate demo: IMAP on %[1]s and SMTP submission on %[8]s (cleartext, loopback only);
the upstreams are an in-process IMAP server and a submission server that delivers to it.

  user:             %[2]s   (MFA on: only app passwords log in)
  app password:     %[3]s   (name "Outlook")
  primary password: %[4]s   (refused with an [ALERT]: MFA is on)
  non-MFA user:     %[5]s / %[6]s

List the inbox through passgate with the app password:

  curl --login-options AUTH=PLAIN -u '%[2]s:%[3]s' 'imap://%[1]s/INBOX' -X 'FETCH 1:* ENVELOPE'

Send a message through passgate's SMTP with the same app password (it lands in the inbox above):

  printf 'From: %[2]s\r\nDate: %%s\r\nSubject: Hello through passgate\r\n\r\nSent with an app password.\r\n' "$(LC_ALL=C date -u '+%%a, %%d %%b %%Y %%H:%%M:%%S +0000')" | curl -sS --login-options AUTH=PLAIN -u '%[2]s:%[3]s' --mail-from %[2]s --mail-rcpt %[2]s -T - 'smtp://%[8]s'

Try the primary password instead, and see the alert:

  curl -v --login-options AUTH=PLAIN -u '%[2]s:%[4]s' 'imap://%[1]s/INBOX'

Manage app passwords in the web portal, signed in as %[2]s with the primary
password and a code from an authenticator app (or: oathtool --totp -b %[10]s):

  %[9]s
  authenticator secret (TOTP, 30 s, 6 digits): %[10]s

Manage it from the command line while it runs (through the control socket):

  passgate apppass list %[2]s --config %[7]s
  passgate apppass revoke %[2]s Outlook --config %[7]s

Prometheus metrics and health (what 'passgate health' asks):

  curl http://%[11]s/metrics
  curl http://%[11]s/readyz

Ctrl-C stops the demo and deletes its files.
`, addr, demoUser, c.appPassword, c.primary, demoPlainUser, c.plainPrimary, cfgPath, l.SMTP,
		"http://"+l.Portal.String()+"/", c.totpSecret, l.Metrics)
}

// flagAddr is a listen address and the flag that set it.
type flagAddr struct {
	flag string
	addr *string
}

// freeDefaults replaces each address left at its default whose port is
// taken by the same host with port 0 (fixedPorts then picks a free one)
// and says so on stderr, so that something on 8080 does not stop the demo.
// An address given on the command line must be free: it is an error.
func freeDefaults(e env, fs *flag.FlagSet, addrs []flagAddr) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given["--"+f.Name] = true })
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(*a.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", a.flag, err)
		}
		if port == "0" {
			continue
		}
		ln, err := net.Listen("tcp", *a.addr)
		if err == nil {
			ln.Close()
			continue
		}
		if given[a.flag] {
			return fmt.Errorf("%s %s: %w", a.flag, *a.addr, err)
		}
		fmt.Fprintf(e.stderr, "passgate demo: %s is taken; %s picks a free port instead\n", *a.addr, a.flag)
		*a.addr = net.JoinHostPort(host, "0")
	}
	return nil
}

// fixedPorts puts a free port in place of each port 0, distinct from one
// another: the config names the ports (portal.url, and the IMAP and SMTP
// ports the portal tells mail apps), so they must be the ones passgate
// will listen on.
func fixedPorts(addrs []flagAddr) error {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(*a.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", a.flag, err)
		}
		if port != "0" {
			continue
		}
		// Held open until all are picked, so no two get the same port.
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return fmt.Errorf("%s: %w", a.flag, err)
		}
		held = append(held, ln)
		*a.addr = ln.Addr().String()
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}
