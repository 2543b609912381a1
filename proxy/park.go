package proxy

import (
	"crypto/tls"
	"errors"
	"net"
)

// errParked is what copyDirection returns when it parked its direction:
// the goroutine ends and a wake runs the direction again.
var errParked = errors.New("direction parked")

// Parkable is a connection wrapper that can tell which TCP connection's
// readability means it has bytes to read: ParkSource returns it, or nil
// while the wrapper holds read bytes of its own (or reads must go through
// it for another reason), so that the direction must not park.
type Parkable interface {
	ParkSource() *net.TCPConn
}

// parkSource is the TCP connection under src on which a silent direction
// waits while parked, or nil if src cannot be parked.
//
// A *tls.Conn qualifies because a direction parks only after a Read on it
// returned a timeout having read nothing: crypto/tls then had no plaintext
// left and no whole record in its raw buffer (it reads the socket only when
// it lacks one), so whatever comes next must arrive on the socket.
func parkSource(src net.Conn) *net.TCPConn {
	switch c := src.(type) {
	case *net.TCPConn:
		return c
	case *tls.Conn:
		tc, _ := c.NetConn().(*net.TCPConn)
		return tc
	case Parkable:
		return c.ParkSource()
	}
	return nil
}

// PollerFunction is the function of the one goroutine that waits for
// parked sessions for the life of the process, for leak checkers
// (goleak.IgnoreAnyFunction).
const PollerFunction = "github.com/passgate/passgate/proxy.(*poller).run"
