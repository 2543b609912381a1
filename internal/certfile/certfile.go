// Package certfile serves a TLS key pair from files that may change on disk
// (certbot renewing them): a Reloader re-reads the pair when either file's
// modification time or size changes, and keeps the old pair if the new one
// does not load.
//
//	r, err := certfile.Load(certFile, keyFile)
//	cfg := &tls.Config{GetCertificate: r.GetCertificate}
package certfile

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a Reloader looks at its files: one
// stat of each per interval, on the first handshake after it.
const CheckInterval = time.Second

// Reloader is a key pair read from CertFile and KeyFile. It is safe for
// concurrent use.
type Reloader struct {
	certFile, keyFile string
	// Logger receives an ERROR when changed files do not load. If nil,
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]stamp  // of the files when last read
	checked time.Time // last look at the files
}

// stamp is what tells a changed file apart without reading it: its
// modification time and size, and which file it is (a file renamed over
// it, or a symbolic link pointed elsewhere, as certbot does, is another
// one even within the file system's timestamp granularity).
type stamp struct {
	mod  time.Time
	size int64
	fi   os.FileInfo
}

func (s stamp) same(t stamp) bool {
	return s.mod.Equal(t.mod) && s.size == t.size && s.fi != nil && t.fi != nil && os.SameFile(s.fi, t.fi)
}

// Load reads the pair, failing if it does not load.
func Load(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	st, err := r.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("key pair %s + %s: %w", certFile, keyFile, err)
	}
	r.cert, r.stamp = &cert, st
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate: the current pair, after
// re-reading the files if they changed (looked at once per CheckInterval).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) >= CheckInterval || now.Before(r.checked) {
		r.checked = now
		r.refresh()
	}
	return r.cert, nil
}

// refresh re-reads the pair if a file changed. A pair that does not load
// is logged and the old one kept; it is tried again when a file changes
// again.
func (r *Reloader) refresh() {
	st, err := r.stamps()
	if err != nil {
		r.logger().Error("tls certificate: files unreadable, keeping the loaded certificate", "err", err)
		return
	}
	if st[0].same(r.stamp[0]) && st[1].same(r.stamp[1]) {
		return
	}
	r.stamp = st
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.logger().Error("tls certificate: changed files do not load, keeping the loaded certificate",
			"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		return
	}
	r.cert = &cert
	r.logger().Info("tls certificate reloaded", "cert_file", r.certFile)
}

func (r *Reloader) stamps() ([2]stamp, error) {
	var st [2]stamp
	for i, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("tls certificate: %w", err)
		}
		st[i] = stamp{fi.ModTime(), fi.Size(), fi}
	}
	return st, nil
}

func (r *Reloader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reloader) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
