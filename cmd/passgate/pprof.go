package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"time"
)

// pprofEnv names the environment variable that, set to a loopback
// host:port, serves Go's profiles (net/http/pprof) there while any command
// runs: how the figures of `passgate bench` are explained, e.g.
//
//	PASSGATE_PPROF=127.0.0.1:6060 passgate serve ...
//	go tool pprof 'http://127.0.0.1:6060/debug/pprof/profile?seconds=10'
const pprofEnv = "PASSGATE_PPROF"

// startPprof serves the profiles on addr, which must be a loopback
// address; stop closes the listener.
func startPprof(addr string) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pprofEnv, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: %s is not a loopback IP address", pprofEnv, host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "passgate:", pprofEnv, err)
		}
	}()
	return func() { srv.Close() }, nil
}
