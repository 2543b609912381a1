//go:build !linux

package proxy

import "net"

// listenConfig is net.Listen's: keepalive set on each accepted connection.
func listenConfig() *net.ListenConfig { return &net.ListenConfig{} }
