package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/go-ldap/ldap/v3"

	"github.com/passgate/passgate/directory/internal/connpool"
)

// dialer makes connections to one server, ready for requests: TLS
// (ldaps:// or StartTLS), the request timeout, and for the search pool the
// service account's bind.
type dialer struct {
	network, addr string
	ldaps         bool
	startTLS      bool
	tls           *tls.Config
	net           net.Dialer
	cfg           *Config
}

// dial connects within ctx and the configured timeout. bindService binds as
// the service account (when one is configured).
func (d *dialer) dial(ctx context.Context, bindService bool) (*ldap.Conn, error) {
	var conn net.Conn
	var err error
	if d.ldaps {
		td := &tls.Dialer{NetDialer: &d.net, Config: d.tls}
		conn, err = td.DialContext(ctx, d.network, d.addr)
	} else {
		conn, err = d.net.DialContext(ctx, d.network, d.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", d.addr, err)
	}
	c := ldap.NewConn(conn, d.ldaps)
	c.Start()
	c.SetTimeout(d.cfg.Timeout)
	err = connpool.WithContext(ctx, c, func() error {
		if d.startTLS {
			if err := c.StartTLS(d.tls); err != nil {
				return fmt.Errorf("StartTLS with %s: %w", d.addr, err)
			}
		}
		if bindService && d.cfg.BindDN != "" {
			if err := c.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
				return fmt.Errorf("bind as the service account %s: %w", d.cfg.BindDN, err)
			}
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// isServerAnswer reports whether err is a result the server sent (an LDAP
// result code), after which the connection still serves; go-ldap's own
// codes (network, timeout, decoding) start at 200.
func isServerAnswer(err error) bool {
	var le *ldap.Error
	return errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork
}
