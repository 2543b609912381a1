package integration

import (
	"net"
	"strings"
	"testing"
)

// TestUpstreamModes logs in for real through each upstream login mode and
// upstream transport, and checks in Dovecot's log how passgate logged in.
func TestUpstreamModes(t *testing.T) {
	d := sharedDovecot(t)
	clientIP := net.IPv4(127, 0, 0, 2)
	tests := []struct {
		name string
		opts passgateOpts
	}{
		{"master", passgateOpts{}},
		{"master with secret file", passgateOpts{SecretVia: "file"}},
		{"master with secret from env", passgateOpts{SecretVia: "env"}},
		{"master over STARTTLS", passgateOpts{UpstreamTLS: "starttls"}},
		{"master over TLS", passgateOpts{UpstreamTLS: "tls"}},
		{"login-master", passgateOpts{Login: "login-master"}},
		{"login-master over TLS", passgateOpts{Login: "login-master", UpstreamTLS: "tls"}},
		{"passthrough", passgateOpts{Login: "passthrough"}},
		{"passthrough over STARTTLS", passgateOpts{Login: "passthrough", UpstreamTLS: "starttls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pg := startPassgate(t, d, tt.opts)
			a := newAccount(t, d, pg, false)
			d.deliver(t, a.User, testMessage(a.User, "upstream "+tt.name, "x"))
			secret := a.AppPass
			if tt.opts.Login == "passthrough" {
				secret = a.Primary // Dovecot knows only the primary password
			}
			// The client comes from 127.0.0.2; passgate itself dials
			// Dovecot from 127.0.0.1 and forwards the client's address
			// with ID x-originating-ip.
			c := pg.dialFrom(t, viaTLS, nil, clientIP)
			if err := c.Login(a.User, secret).Wait(); err != nil {
				t.Fatalf("LOGIN through passgate: %v", err)
			}
			if n := selectInbox(t, c); n != 1 {
				t.Fatalf("INBOX has %d messages, want the delivered one", n)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Fatalf("LOGOUT: %v", err)
			}

			log := d.LogWhen("Login: user=<" + a.User + ">")
			master := strings.Contains(log, "Master user logging in as "+a.User)
			if wantMaster := tt.opts.Login != "passthrough"; master != wantMaster {
				t.Errorf("Dovecot logged a master-user login: %v, want %v", master, wantMaster)
			}
			login := loginLine(log, a.User)
			if login == "" {
				t.Fatalf("no login of %s in Dovecot's log", a.User)
			}
			if tls := strings.Contains(login, ", TLS"); tls != (tt.opts.UpstreamTLS == "starttls" || tt.opts.UpstreamTLS == "tls") {
				t.Errorf("upstream login over TLS: %v, want it with tls=%q: %s", tls, tt.opts.UpstreamTLS, login)
			}
			if !strings.Contains(login, "rip="+clientIP.String()+",") {
				t.Errorf("upstream login without the client's address %s: %s", clientIP, login)
			}
		})
	}
}

// loginLine returns Dovecot's "Login:" log line for user, if any.
func loginLine(log, user string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Login: user=<"+user+">") {
			return line
		}
	}
	return ""
}
