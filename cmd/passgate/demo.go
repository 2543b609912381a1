package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/config"
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
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("demo: unexpected argument %q", pos[0])
	}
	dir, err := os.MkdirTemp("", "passgate-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	masterSecret := rand.Text()
	up, err := startDemoUpstream(demoMaster, masterSecret, []string{demoUser, demoPlainUser})
	if err != nil {
		return err
	}
	defer up.Close()

	cfgPath := filepath.Join(dir, "passgate.toml")
	if err := writeDemoConfig(cfgPath, *listen, up.Addr().String(), masterSecret); err != nil {
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

func writeDemoConfig(path, listen, upstreamAddr, masterSecret string) error {
	text := fmt.Sprintf(`# Written by 'passgate demo'; removed when the demo stops.
[imap]
listen = %q
allow_cleartext = true   # loopback demo only: no TLS certificate

[imap.upstream]
address = %q
login = "login-master"
master_user = %q
master_secret = %q

[portal]
url = "https://mail.example.org/app-passwords"
`, listen, upstreamAddr, demoMaster, masterSecret)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("demo: write config: %w", err)
	}
	return nil
}

type demoCreds struct {
	appPassword, primary, plainPrimary string
}

// seedDemo creates the demo accounts in the store of cfg.
func seedDemo(ctx context.Context, cfg *config.Config) (demoCreds, error) {
	db, err := bolt.Open(cfg.Store.Path, bolt.Options{})
	if err != nil {
		return demoCreds{}, fmt.Errorf("demo: %w", err)
	}
	defer db.Close()
	v := &authn.Verifier{Store: db, Params: argonParams(cfg)}
	c := demoCreds{primary: "correct horse battery", plainPrimary: "bob's primary password"}
	if err := v.CreateAccount(ctx, demoUser, c.primary, true); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	if err := v.CreateAccount(ctx, demoPlainUser, c.plainPrimary, false); err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	p, err := v.CreateAppPassword(ctx, demoUser, "Outlook", nil, zeroTime)
	if err != nil {
		return c, fmt.Errorf("demo: %w", err)
	}
	c.appPassword = p.Password
	return c, nil
}

func printDemo(e env, cfgPath string, l listening, c demoCreds) {
	addr := l.IMAP.String()
	fmt.Fprintf(e.stdout, `passgate demo: IMAP on %[1]s (cleartext, loopback only), upstream is an in-process IMAP server.

  user:             %[2]s   (MFA on: only app passwords log in)
  app password:     %[3]s   (name "Outlook")
  primary password: %[4]s   (refused with an [ALERT]: MFA is on)
  non-MFA user:     %[5]s / %[6]s

List the inbox through passgate with the app password:

  curl --login-options AUTH=PLAIN -u '%[2]s:%[3]s' 'imap://%[1]s/INBOX' -X 'FETCH 1:* ENVELOPE'

Try the primary password instead, and see the alert:

  curl -v --login-options AUTH=PLAIN -u '%[2]s:%[4]s' 'imap://%[1]s/INBOX'

Manage it while it runs (the CLI goes through the control socket):

  passgate apppass list %[2]s --config %[7]s
  passgate apppass revoke %[2]s Outlook --config %[7]s

Ctrl-C stops the demo and deletes its files.
`, addr, demoUser, c.appPassword, c.primary, demoPlainUser, c.plainPrimary, cfgPath)
}
