package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"regexp"
	"sync"
	"testing"

	"github.com/passgate/passgate/internal/testcert"
)

var fingerprintShape = regexp.MustCompile(`^t1[0-3][di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

// handshakes connects client to a loopback TLS server using base through
// a HelloWatch n times and returns each connection's fingerprint
// and whether the client resumed.
func handshakes(t *testing.T, base, client *tls.Config, n int) ([]string, []bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var fps []string
	w := NewHelloWatch(base)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			stop := w.Watch(nc, func(fp string) {
				mu.Lock()
				fps = append(fps, fp)
				mu.Unlock()
			})
			tc := tls.Server(nc, w.Config())
			if err := tc.Handshake(); err == nil {
				tc.Write([]byte("x")) // lets a TLS 1.3 client read its ticket
			}
			stop()
			tc.Close()
		}
	}()
	var resumed []bool
	for range n {
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(c)
		resumed = append(resumed, c.ConnectionState().DidResume)
		c.Close()
	}
	<-done
	return fps, resumed
}

// A client keeps its fingerprint across connections, resumed ones (which
// add pre_shared_key, and in TLS 1.2 a session ticket) included; another
// TLS configuration gets another.
func TestTLSFingerprintStableAcrossResumption(t *testing.T) {
	base := testcert.ServerConfig()
	got := map[string]string{}
	for _, tc := range []struct {
		name string
		max  uint16
		alpn []string
	}{
		{"tls13", tls.VersionTLS13, nil},
		{"tls12", tls.VersionTLS12, nil},
		{"tls13-alpn", tls.VersionTLS13, []string{"imap"}},
	} {
		client := testcert.ClientConfig("localhost")
		client.MaxVersion = tc.max
		client.NextProtos = tc.alpn
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		fps, resumed := handshakes(t, base, client, 3)
		if len(fps) != 3 || !resumed[1] || !resumed[2] {
			t.Fatalf("%s: %d fingerprints, resumed %v: want 3 and the later ones resumed", tc.name, len(fps), resumed)
		}
		for i, fp := range fps {
			if fp != fps[0] {
				t.Errorf("%s: connection %d (resumed %v) has %s, the first %s", tc.name, i, resumed[i], fp, fps[0])
			}
			if !fingerprintShape.MatchString(fp) {
				t.Errorf("%s: %q is not in the shape t13d1516h2_<12 hex>_<12 hex>", tc.name, fp)
			}
		}
		t.Logf("%s: %s", tc.name, fps[0])
		got[tc.name] = fps[0]
	}
	if got["tls13"] == got["tls12"] || got["tls13"] == got["tls13-alpn"] {
		t.Errorf("different client configurations share a fingerprint: %v", got)
	}
	if got["tls13"][:4] != "t13d" || got["tls12"][:4] != "t12d" || got["tls13-alpn"][8:10] != "ip" {
		t.Errorf("part a does not show version, SNI and ALPN: %v", got)
	}
}

// GREASE values and the volatile extensions change nothing; a cipher
// suite, an extension, a group or a signature scheme does.
func TestTLSFingerprintFields(t *testing.T) {
	hello := func() *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{
			CipherSuites:      []uint16{0x1301, 0x1302, 0xc02b},
			ServerName:        "mail.example.org",
			SupportedCurves:   []tls.CurveID{tls.X25519, tls.CurveP256},
			SupportedPoints:   []uint8{0},
			SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256},
			SupportedProtos:   nil,
			SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
			Extensions:        []uint16{0, 10, 11, 13, 43, 45, 51},
		}
	}
	want := TLSFingerprint(hello())
	if want[:10] != "t13d030700" {
		t.Errorf("part a %q, want t13d030700", want[:10])
	}
	same := map[string]func(h *tls.ClientHelloInfo){
		"GREASE": func(h *tls.ClientHelloInfo) {
			h.CipherSuites = append([]uint16{0x4a4a}, h.CipherSuites...)
			h.Extensions = append([]uint16{0xdada}, append(h.Extensions, 0x1a1a)...)
			h.SupportedCurves = append([]tls.CurveID{0x2a2a}, h.SupportedCurves...)
			h.SupportedVersions = append([]uint16{0x7a7a}, h.SupportedVersions...)
		},
		"resumption and padding": func(h *tls.ClientHelloInfo) { h.Extensions = append(h.Extensions, 21, 35, 41, 42) },
		"order of suites and extensions": func(h *tls.ClientHelloInfo) {
			h.CipherSuites = []uint16{0xc02b, 0x1302, 0x1301}
			h.Extensions = []uint16{51, 45, 43, 13, 11, 10, 0}
		},
		"another server name": func(h *tls.ClientHelloInfo) { h.ServerName = "127.0.0.1.nip.io" },
	}
	for name, fn := range same {
		h := hello()
		fn(h)
		if got := TLSFingerprint(h); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	differ := map[string]func(h *tls.ClientHelloInfo){
		"cipher suite":     func(h *tls.ClientHelloInfo) { h.CipherSuites = h.CipherSuites[1:] },
		"extension":        func(h *tls.ClientHelloInfo) { h.Extensions = append(h.Extensions, 23) },
		"group":            func(h *tls.ClientHelloInfo) { h.SupportedCurves = h.SupportedCurves[:1] },
		"group order":      func(h *tls.ClientHelloInfo) { h.SupportedCurves = []tls.CurveID{tls.CurveP256, tls.X25519} },
		"signature scheme": func(h *tls.ClientHelloInfo) { h.SignatureSchemes = h.SignatureSchemes[:1] },
		"point format":     func(h *tls.ClientHelloInfo) { h.SupportedPoints = []uint8{0, 1} },
		"no server name":   func(h *tls.ClientHelloInfo) { h.ServerName = "" },
		"ALPN":             func(h *tls.ClientHelloInfo) { h.SupportedProtos = []string{"h2"} },
		"TLS 1.2 only":     func(h *tls.ClientHelloInfo) { h.SupportedVersions = []uint16{tls.VersionTLS12} },
	}
	for name, fn := range differ {
		h := hello()
		fn(h)
		if got := TLSFingerprint(h); got == want {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}

func TestClientNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.77":         "192.0.2.0/24",
		"::ffff:192.0.2.77":  "192.0.2.0/24",
		"2001:db8:1:2::5":    "2001:db8:1::/48",
		"fe80::1%eth0":       "fe80::/48",
		"127.0.0.1":          "127.0.0.0/24",
		"2001:db8:ffff:1::1": "2001:db8:ffff::/48",
	} {
		if got := ClientNetwork(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("ClientNetwork(%s) = %s, want %s", in, got, want)
		}
	}
	if got := ClientNetwork(netip.Addr{}); got.IsValid() {
		t.Errorf("ClientNetwork(invalid) = %s", got)
	}
}

func TestHeloName(t *testing.T) {
	for in, want := range map[string]string{
		"Laptop.Example.org": "laptop.example.org",
		"[192.168.1.5]":      "",
		"[IPv6:2001:db8::1]": "",
		"192.168.1.5":        "",
		"":                   "",
		"bad\x00name\r":      "badname",
	} {
		if got := HeloName(in); got != want {
			t.Errorf("HeloName(%q) = %q, want %q", in, got, want)
		}
	}
}
