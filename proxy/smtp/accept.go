package smtp

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/passgate/passgate/proxy"
)

// refuseTimeout bounds the TLS handshake and the reply to a connection over
// Limits.Conns: an excess connection is not held for a whole ReadTimeout.
const refuseTimeout = 10 * time.Second

// replyTooManyConnections replaces the greeting of a connection over
// Limits.Conns (RFC 5321 §3.1: a server may answer the connection with 421
// and close it).
const replyTooManyConnections = "421 4.7.0 Too many connections, try again later\r\n"

// newClientConn wraps an accepted connection, gives it a session id and
// counts it in Limits.Conns. admitted is false when a limit is reached;
// the connection is tracked (and closed by Close) either way.
func (s *Server) newClientConn(nc net.Conn) (cc *clientConn, admitted bool) {
	remote := proxy.RemoteAddrPort(nc.RemoteAddr())
	id := proxy.NewSessionID()
	lim := s.limits()
	cc = &clientConn{
		Conn:           nc,
		set:            &s.conns,
		id:             id,
		log:            s.logger().With("session", id, "remote", remote.String()),
		maxPreauth:     int32(lim.MaxPreauthCommands),
		preauthTimeout: lim.PreauthTimeout,
		writeTimeout:   s.writeTimeout(),
	}
	s.conns.add(cc)
	cc.release, cc.refusedBy = lim.Conns.Admit(remote.Addr())
	return cc, cc.refusedBy == ""
}

// refuseConn answers a connection over Limits.Conns with 421 instead of
// the greeting (after the TLS handshake on the implicit-TLS listener, so
// that the client can read it) and closes it, in a goroutine of its own
// that Close and Shutdown wait for.
func (s *Server) refuseConn(cc *clientConn, tlsConfig *tls.Config) {
	cc.log.Info("smtp connection refused: too many connections", "limit", cc.refusedBy)
	s.lnMu.Lock()
	if s.closed {
		s.lnMu.Unlock()
		cc.Close()
		return
	}
	s.refusing.Add(1) // under lnMu: never concurrent with a Wait after close
	s.lnMu.Unlock()
	go func() {
		defer s.refusing.Done()
		defer cc.Close()
		timeout := min(s.readTimeout(), refuseTimeout, s.limits().PreauthTimeout)
		cc.Conn.SetDeadline(time.Now().Add(timeout))
		var w net.Conn = cc
		if tlsConfig != nil {
			tc := tls.Server(cc, tlsConfig)
			if err := tc.Handshake(); err != nil {
				cc.log.Debug("smtp tls handshake failed", "err", err)
				return
			}
			w = tc
		}
		w.Write([]byte(replyTooManyConnections))
	}()
}
