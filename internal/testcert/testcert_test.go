package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs one TLS handshake over 127.0.0.1 and returns the
// client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.(*tls.Conn).Handshake() // the client reports the outcome
	}()
	defer func() { <-done }()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", ln.Addr().String(), client)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestSharedConfigs(t *testing.T) {
	tests := []struct {
		serverName string
		ok         bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"", true}, // tls.Dial fills in 127.0.0.1 from the address
		{"mail.example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			err := handshake(t, ServerConfig(), ClientConfig(tt.serverName))
			if (err == nil) != tt.ok {
				t.Fatalf("handshake for %q: %v, want success %v", tt.serverName, err, tt.ok)
			}
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		err := handshake(t, ServerConfig(), &tls.Config{ServerName: "localhost", RootCAs: x509.NewCertPool()})
		if err == nil {
			t.Fatal("handshake succeeded with an empty pool")
		}
	})
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := Write(t, dir, "")
	certB, keyB := Write(t, dir, "other-")
	if certA != filepath.Join(dir, "cert.pem") || keyA != filepath.Join(dir, "key.pem") ||
		certB != filepath.Join(dir, "other-cert.pem") || keyB != filepath.Join(dir, "other-key.pem") {
		t.Fatalf("files %s %s %s %s", certA, keyA, certB, keyB)
	}
	if fi, err := os.Stat(keyA); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	pairA, err := tls.LoadX509KeyPair(certA, keyA)
	if err != nil {
		t.Fatal(err)
	}
	pairB, err := tls.LoadX509KeyPair(certB, keyB)
	if err != nil {
		t.Fatal(err)
	}
	if pairA.Leaf.Subject.String() == pairB.Leaf.Subject.String() {
		t.Errorf("two certificates share the subject %s", pairA.Leaf.Subject)
	}
	serverA := &tls.Config{Certificates: []tls.Certificate{pairA}}
	if err := handshake(t, serverA, &tls.Config{ServerName: "localhost", RootCAs: Pool(t, certA)}); err != nil {
		t.Errorf("handshake trusting the certificate: %v", err)
	}
	if err := handshake(t, serverA, &tls.Config{ServerName: "localhost", RootCAs: Pool(t, certB)}); err == nil {
		t.Error("handshake trusting another certificate succeeded")
	}
}
