//go:build !unix

package upstream

import "net"

// canPool is false where idle cannot tell a live connection from one the
// upstream closed: Config.Pool is ignored there.
const canPool = false

func idle(net.Conn) bool { return false }
