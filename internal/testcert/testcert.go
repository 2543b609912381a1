// Package testcert makes self-signed certificates for tests on 127.0.0.1.
//
// Every certificate is an ECDSA P-256 (RSA 2048 from WriteRSA) certificate
// for localhost and 127.0.0.1 that is its own CA, valid from an hour ago
// for a day, with a random serial number that also appears in its subject,
// so that two of them never share an issuer name. Servers in one test binary share one
// certificate (ServerConfig, ClientConfig); servers in other processes get
// their own as PEM files (Write, WriteFiles).
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// generate makes a new certificate and its key.
func generate() (der []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err = create(key)
	return der, key, err
}

// create makes the certificate of key.
func create(key crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: "localhost", Organization: []string{"passgate test"},
			SerialNumber: serial.Text(16)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return der, nil
}

// shared is the certificate of ServerConfig and the pool of ClientConfig,
// made on first use.
var shared = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	der, key, err := generate()
	if err != nil {
		panic("testcert: " + err.Error())
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic("testcert: parse certificate: " + err.Error())
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

// ServerConfig returns a new server config that presents the test binary's
// shared certificate.
func ServerConfig() *tls.Config {
	cert, _ := shared()
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// ClientConfig returns a new client config that trusts only the shared
// certificate of ServerConfig and expects serverName ("localhost" or
// "127.0.0.1"). An empty serverName is left for the caller to fill in, as
// tls.Dial does from the address.
func ClientConfig(serverName string) *tls.Config {
	_, pool := shared()
	return &tls.Config{RootCAs: pool, ServerName: serverName}
}

// WriteFiles writes a new certificate to dir/<prefix>cert.pem (mode 0644)
// and its PKCS #8 key to dir/<prefix>key.pem (mode 0600), and returns
// their paths. It is for setups that have no testing.TB; tests use Write.
func WriteFiles(dir, prefix string) (certFile, keyFile string, err error) {
	der, key, err := generate()
	if err != nil {
		return "", "", err
	}
	return writePEM(dir, prefix, der, key)
}

// WriteRSA writes, as Write does, a certificate whose key is RSA (2048
// bits), for signatures that must be RSA: an application's certificate
// for OAuth 2.0 client assertions (PS256).
func WriteRSA(t testing.TB, dir, prefix string) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testcert: generate key: %v", err)
	}
	der, err := create(key)
	if err == nil {
		certFile, keyFile, err = writePEM(dir, prefix, der, key)
	}
	if err != nil {
		t.Fatalf("testcert: %v", err)
	}
	return certFile, keyFile
}

// writePEM writes certificate der and its key, as WriteFiles documents.
func writePEM(dir, prefix string, der []byte, key crypto.Signer) (certFile, keyFile string, err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal key: %w", err)
	}
	certFile = filepath.Join(dir, prefix+"cert.pem")
	keyFile = filepath.Join(dir, prefix+"key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("write key: %w", err)
	}
	return certFile, keyFile, nil
}

// Write is WriteFiles that fails the test on error.
func Write(t testing.TB, dir, prefix string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := WriteFiles(dir, prefix)
	if err != nil {
		t.Fatalf("testcert: %v", err)
	}
	return certFile, keyFile
}

// Pool returns a pool that trusts the PEM certificates in certFile, as a
// client of a server started with Write's files does.
func Pool(t testing.TB, certFile string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("testcert: read certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("testcert: no certificate in %s", certFile)
	}
	return pool
}
