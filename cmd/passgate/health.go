package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealth asks a running passgate's metrics listener whether it is ready
// (/readyz; --live: only alive, /healthz) and exits 0 or 1: the container
// health check of the distroless image, which has no curl.
func cmdHealth(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags("health")
	live := fs.Bool("live", false, "ask /healthz (the process serves) instead of /readyz (store and upstreams reachable)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Metrics.Listen == "" {
		return fmt.Errorf("health: metrics.listen is not set in %s: nothing to ask", *cfgPath)
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	url := "http://" + dialable(cfg.Metrics.Listen) + path
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s: %s: %s", url, resp.Status, text)
	}
	fmt.Fprintln(e.stdout, text)
	return nil
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":9090", "0.0.0.0:9090", "[::]:9090") becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
