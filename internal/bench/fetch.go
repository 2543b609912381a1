package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// fetch logs in once, selects INBOX, finds the message of FetchSize bytes
// (prepareFetch put it there), fetches it once to check its size, then
// Fetches times: the figure is literal bytes per second (MB/s, 1e6); work
// is in GiB.
func (r *runner) fetch(ctx context.Context, t Target, addr string, tlsConf *tls.Config) (sample, error) {
	c, err := r.openMailbox(ctx, t, addr, tlsConf)
	if err != nil {
		return sample{}, err
	}
	defer c.close()
	uid, err := findMessage(c, r.cfg.FetchSize)
	if err != nil {
		return sample{}, err
	}
	if uid == 0 {
		return sample{}, fmt.Errorf("no message of %d bytes in INBOX", r.cfg.FetchSize)
	}
	cmd := []byte("UID FETCH " + strconv.FormatUint(uid, 10) + " (BODY[])")
	buf := make([]byte, 256<<10)
	var got int64
	lit := func(br *bufio.Reader, n int64) error {
		if n != int64(r.cfg.FetchSize) {
			return fmt.Errorf("FETCH returned a literal of %d bytes, want %d", n, r.cfg.FetchSize)
		}
		got += n
		return discardN(br, n, buf)
	}
	if err := c.command(cmd, handler{literal: lit}); err != nil {
		return sample{}, fmt.Errorf("UID FETCH: %w", err)
	}
	got = 0
	start := time.Now()
	for range r.cfg.Fetches {
		if err := ctx.Err(); err != nil {
			return sample{}, err
		}
		if err := c.command(cmd, handler{literal: lit}); err != nil {
			return sample{}, fmt.Errorf("UID FETCH: %w", err)
		}
	}
	elapsed := time.Since(start)
	if want := int64(r.cfg.Fetches) * int64(r.cfg.FetchSize); got != want {
		return sample{}, fmt.Errorf("FETCH returned %d bytes, want %d", got, want)
	}
	if err := c.logout(); err != nil {
		return sample{}, err
	}
	rate := float64(got) / elapsed.Seconds() / 1e6
	return sample{values: []float64{rate}, work: float64(got) / (1 << 30),
		note: fmt.Sprintf("%.0f MB/s (%d × %d bytes in %.2fs)", rate, r.cfg.Fetches, r.cfg.FetchSize, elapsed.Seconds())}, nil
}

// discardN reads and drops n bytes of br, reading straight from the
// connection into buf once br's buffer is empty.
func discardN(br *bufio.Reader, n int64, buf []byte) error {
	for n > 0 {
		k, err := br.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		if err != nil && n > 0 {
			return fmt.Errorf("read literal: %w", err)
		}
	}
	return nil
}

// openMailbox logs in to addr and selects INBOX.
func (r *runner) openMailbox(ctx context.Context, t Target, addr string, tlsConf *tls.Config) (*imapConn, error) {
	cmd, err := loginCommand(t.User, t.Secret)
	if err != nil {
		return nil, err
	}
	c := newIMAPConn(64<<10, r.cfg.IOTimeout)
	if err := c.login(ctx, addr, tlsConf, cmd); err != nil {
		return nil, err
	}
	if err := c.command([]byte(`SELECT "INBOX"`), handler{}); err != nil {
		c.close()
		return nil, fmt.Errorf("SELECT: %w", err)
	}
	return c, nil
}

// findMessage returns the UID of the last message of exactly size bytes in
// the selected mailbox, or 0.
func findMessage(c *imapConn, size int) (uint64, error) {
	var uid uint64
	cmd := fmt.Sprintf("UID SEARCH LARGER %d SMALLER %d", size-1, size+1)
	err := c.command([]byte(cmd), handler{line: func(line []byte) error {
		rest, ok := bytes.CutPrefix(line, []byte("* SEARCH"))
		if !ok {
			return nil
		}
		for _, f := range bytes.Fields(rest) {
			if u, err := strconv.ParseUint(string(f), 10, 64); err == nil && u > uid {
				uid = u
			}
		}
		return nil
	}})
	if err != nil {
		return 0, fmt.Errorf("UID SEARCH: %w", err)
	}
	return uid, nil
}

// prepareFetch makes sure that the INBOX behind addr holds a message of
// FetchSize bytes, appending one if none is there.
func (r *runner) prepareFetch(ctx context.Context, t Target, addr string, tlsConf *tls.Config) error {
	c, err := r.openMailbox(ctx, t, addr, tlsConf)
	if err != nil {
		return err
	}
	defer c.close()
	uid, err := findMessage(c, r.cfg.FetchSize)
	if err != nil || uid != 0 {
		return err
	}
	msg := message(r.cfg.FetchSize, r.cfg.sender(t), r.cfg.recipient(t))
	tag, err := c.send([]byte(`APPEND "INBOX" {` + strconv.Itoa(len(msg)) + "}"))
	if err != nil {
		return err
	}
	if err := c.await(tag, handler{}); !errors.Is(err, errContinue) {
		return fmt.Errorf("APPEND: no continuation: %w", err)
	}
	c.nc.SetDeadline(time.Now().Add(r.cfg.IOTimeout + time.Duration(len(msg)>>20)*time.Second))
	if _, err := c.nc.Write(append(msg, '\r', '\n')); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	if err := c.await(tag, handler{}); err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	fmt.Fprintf(r.cfg.Log, "appended a message of %d bytes through %s\n", len(msg), t.Name)
	return c.logout()
}
