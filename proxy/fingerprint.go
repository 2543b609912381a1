package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/passgate/passgate/store"
)

// TLSFingerprint is the fingerprint of a TLS ClientHello that first-use
// binding compares (authn/device.go), in the shape of JA4
// ("t13d1516h2_8daaf6152771_e5627efa2ab1"), computed from what
// crypto/tls tells a server:
//
//   - part a: "t", the highest TLS version offered ("13", "12", ...),
//     "d" if the client sent a server name (SNI) else "i", the number of
//     cipher suites and of extensions (two digits each, at most 99), and
//     the first and last character of the first ALPN protocol ("00" for
//     none, "99" if not alphanumeric);
//   - part b: the first 12 hex digits of SHA-256 of the sorted cipher
//     suites (4 hex digits each, comma-separated);
//   - part c: the same of the sorted extensions (without SNI and ALPN,
//     which part a shows), then "_" and the signature schemes, supported
//     groups and point formats, each in the client's order.
//
// GREASE values (RFC 8701) are left out everywhere, and so are the
// extensions that one client sends on some connections and not on others
// (volatileExtensions), so that a client keeps its fingerprint across
// connections, resumed ones included. Unlike JA4, groups and point formats
// are part of the hash and the extension count leaves the volatile ones
// out.
func TLSFingerprint(h *tls.ClientHelloInfo) string {
	var b strings.Builder
	b.WriteString("t")
	b.WriteString(tlsVersionCode(h.SupportedVersions))
	if h.ServerName != "" {
		b.WriteString("d")
	} else {
		b.WriteString("i")
	}
	ciphers := withoutGREASE(h.CipherSuites)
	slices.Sort(ciphers)
	var exts []uint16
	for _, e := range withoutGREASE(h.Extensions) {
		if !volatileExtensions[e] {
			exts = append(exts, e)
		}
	}
	slices.Sort(exts)
	fmt.Fprintf(&b, "%02d%02d", min(len(ciphers), 99), min(len(exts), 99))
	b.WriteString(alpnCode(h.SupportedProtos))

	hashed := slices.DeleteFunc(slices.Clone(exts), func(e uint16) bool { return e == extServerName || e == extALPN })
	sigs := make([]uint16, len(h.SignatureSchemes))
	for i, s := range h.SignatureSchemes {
		sigs[i] = uint16(s)
	}
	groups := make([]uint16, len(h.SupportedCurves))
	for i, c := range h.SupportedCurves {
		groups[i] = uint16(c)
	}
	points := make([]uint16, len(h.SupportedPoints))
	for i, p := range h.SupportedPoints {
		points[i] = uint16(p)
	}
	c := hexList(hashed) + "_" + hexList(withoutGREASE(sigs)) + "_" + hexList(withoutGREASE(groups)) + "_" + hexList(points)
	return b.String() + "_" + hash12(hexList(ciphers)) + "_" + hash12(c)
}

// Extension numbers (IANA TLS ExtensionType values).
const (
	extServerName = 0
	extALPN       = 16
)

// volatileExtensions vary between connections of one client: padding (its
// presence depends on the hello's length, which a session ticket or PSK
// changes), session_ticket (sent by some clients only with a ticket),
// pre_shared_key and early_data (resumption) and cookie (after a
// HelloRetryRequest).
var volatileExtensions = map[uint16]bool{
	21: true, // padding
	35: true, // session_ticket
	41: true, // pre_shared_key
	42: true, // early_data
	44: true, // cookie
}

// isGREASE reports whether v is a GREASE value (RFC 8701 §2: 0x0A0A,
// 0x1A1A, ... 0xFAFA).
func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func withoutGREASE(vs []uint16) []uint16 {
	out := make([]uint16, 0, len(vs))
	for _, v := range vs {
		if !isGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}

// tlsVersionCode is the highest non-GREASE version offered: "13", "12",
// "11", "10", or "00".
func tlsVersionCode(versions []uint16) string {
	var best uint16
	for _, v := range withoutGREASE(versions) {
		best = max(best, v)
	}
	switch best {
	case tls.VersionTLS13:
		return "13"
	case tls.VersionTLS12:
		return "12"
	case tls.VersionTLS11:
		return "11"
	case tls.VersionTLS10:
		return "10"
	}
	return "00"
}

// alpnCode is the first and last character of the first ALPN protocol.
func alpnCode(protos []string) string {
	if len(protos) == 0 || protos[0] == "" {
		return "00"
	}
	p := protos[0]
	first, last := p[0], p[len(p)-1]
	if !isAlnum(first) || !isAlnum(last) {
		return "99"
	}
	return string([]byte{first, last})
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func hexList(vs []uint16) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("%04x", v)
	}
	return strings.Join(s, ",")
}

func hash12(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// HelloWatch serves TLS with a front-end's config and tells each
// connection the TLSFingerprint of its ClientHello. Make one per server,
// not per connection: TLS session tickets are issued under its config's
// keys (unless base sets its own), so a config per connection would make
// every resumption fail.
type HelloWatch struct {
	config  *tls.Config
	watched sync.Map // net.Conn (as given to tls.Server) -> func(string)
}

// NewHelloWatch returns a HelloWatch serving as base does (base's own
// GetConfigForClient included).
func NewHelloWatch(base *tls.Config) *HelloWatch {
	w := &HelloWatch{}
	w.config = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if seen, ok := w.watched.Load(h.Conn); ok {
			seen.(func(string))(TLSFingerprint(h))
		}
		if base.GetConfigForClient != nil {
			if c, err := base.GetConfigForClient(h); c != nil || err != nil {
				return c, err
			}
		}
		return base, nil
	}}
	return w
}

// Config is the config to serve TLS with (tls.Server, tls.NewListener).
func (w *HelloWatch) Config() *tls.Config { return w.config }

// Watch calls seen with the fingerprint of a ClientHello that arrives on
// nc (the connection given to tls.Server) until stop is called, which the
// caller does once the handshake ended.
func (w *HelloWatch) Watch(nc net.Conn, seen func(fingerprint string)) (stop func()) {
	w.watched.Store(nc, seen)
	return func() { w.watched.Delete(nc) }
}

// ClientNetwork is the network first-use binding compares: the /24 of an
// IPv4 address (IPv4-mapped included), the /48 of an IPv6 one; zero for
// an invalid address.
func ClientNetwork(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.WithZone("").Prefix(bits)
	return p
}

// HeloName is an SMTP EHLO/HELO argument as a client name for first-use
// binding: "" for an address literal ("[192.0.2.1]", RFC 5321 §4.1.3),
// which names a network, not a client; otherwise the name in lower case,
// printable ASCII only, at most 255 bytes.
func HeloName(helo string) string {
	helo = strings.TrimSpace(helo)
	if helo == "" || strings.HasPrefix(helo, "[") {
		return ""
	}
	if _, err := netip.ParseAddr(helo); err == nil { // a bare address is no name either
		return ""
	}
	helo = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return -1
		}
		return r
	}, strings.ToLower(helo))
	return helo[:min(len(helo), 255)]
}

// NewDevice is the device first-use binding compares for a client that
// calls itself name (IMAP ID name, HeloName), sent the ClientHello of
// fingerprint ("" without TLS) and comes from ip (after the PROXY
// protocol).
func NewDevice(name, fingerprint string, ip netip.Addr) store.Device {
	return store.Device{Client: name, TLS: fingerprint, Network: ClientNetwork(ip)}
}

// LazyHelloWatch is a server's HelloWatch, made on first use (a server's
// TLSConfig is set before Serve). The zero value is ready.
type LazyHelloWatch struct {
	once sync.Once
	w    *HelloWatch
}

// Get returns the HelloWatch of base, made on the first call; nil if base
// is nil then.
func (l *LazyHelloWatch) Get(base *tls.Config) *HelloWatch {
	l.once.Do(func() {
		if base != nil {
			l.w = NewHelloWatch(base)
		}
	})
	return l.w
}
