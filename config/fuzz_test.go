package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/passgate/passgate/internal/testcert"
	"github.com/passgate/passgate/proxy/upstream"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// an *Error without a secret in it, and that what it accepts is complete.
// The inputs may name the files cert.pem, key.pem and master-secret of a
// temp dir; useEnv supplies the master secret from the environment.
func FuzzParse(f *testing.F) {
	const (
		fileSecret = "FileSecretQ7x"
		envSecret  = "EnvSecretZ9w"
	)
	dir := f.TempDir()
	testcert.Write(f, dir, "")
	writeFile(f, filepath.Join(dir, "master-secret"), fileSecret+"\n")
	f.Add([]byte(base), false)
	f.Add([]byte(withBase(`master_secret = "s3cret"`, `master_secret_file = "master-secret"`)+
		lines(`tls = "starttls"`, `[tls]`, `cert_file = "cert.pem"`, `key_file = "key.pem"`)), true)

	f.Fuzz(func(t *testing.T, data []byte, useEnv bool) {
		env := map[string]string{}
		if useEnv {
			env["PASSGATE_UPSTREAM_MASTER_SECRET"] = envSecret
		}
		c, err := Parse(data, dir, envMap(env))
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			text := err.Error()
			if strings.Contains(text, fileSecret) || strings.Contains(text, envSecret) {
				t.Fatalf("error shows a secret: %v", err)
			}
			n := len(configErrors(err))
			if j, ok := err.(interface{ Unwrap() []error }); ok && n != len(j.Unwrap()) || n == 0 {
				t.Fatalf("error is not made of *Error: %#v", err)
			}
			return
		}
		if c.IMAP.Listen == "" && c.IMAP.ListenTLS == "" {
			t.Fatal("accepted a config without a listener")
		}
		u := c.IMAP.Upstream
		if u.Login.NeedsMaster() && (u.MasterUser == "" || u.MasterSecret == "") {
			t.Fatalf("accepted login %q without master user or secret", u.Login)
		}
		if (u.TLS == upstream.TLSNone) != (u.TLSConfig == nil) {
			t.Fatalf("upstream tls %q with TLSConfig %v", u.TLS, u.TLSConfig)
		}
		if c.IMAP.ListenTLS != "" && c.TLS.Config == nil {
			t.Fatal("accepted listen_tls without a certificate")
		}
		if (c.Limits.MaxLine != 0 && c.Limits.MaxLine < minLineOrLiteral) || c.Limits.IdleTimeout.Duration < 0 || c.Log.Level == "" ||
			c.Store.Path == "" || c.Control.Socket == "" || c.Authn.ArgonTime == 0 {
			t.Fatalf("defaults missing: %+v", c)
		}
		if !printableASCII(c.MFAText()) {
			t.Fatalf("MFA text %q", c.MFAText())
		}
	})
}
