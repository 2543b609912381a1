package smtp

import (
	"errors"
	"io"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/passgate/passgate/store"
)

// bodyBufSize is the one buffer a message is streamed through.
const bodyBufSize = 64 << 10

// Data streams the message to the upstream as it arrives and answers with
// the upstream's reply to the final dot: 250 only after the upstream's 250.
// A client-side failure (size limit, a bare CR or LF, disconnect, timeout)
// aborts the upstream connection without the final dot, so the partial
// message is discarded (RFC 5321 §4.1.1.4) and the next MAIL connects
// again; an upstream failure is answered 451. The same holds for a BDAT
// message, which go-smtp hands over the same way.
func (ss *session) Data(r io.Reader) error {
	a := ss.auth.Load()
	if a == nil {
		return errAuthRequired
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.up == nil || !ss.upTx {
		return errUpstreamFailed
	}
	log := ss.log().With("user", a.decision.Username, "rcpts", ss.rcpts)
	up := ss.up
	w, err := up.Data()
	if err != nil {
		return ss.upstreamReply(err)
	}
	src, done := messageBody(r, ss.conn, func() { ss.nc.SetReadDeadline(time.Now().Add(ss.srv.readTimeout())) })
	defer done()
	n, readErr, writeErr := relayBody(w, src)
	if ss.srv.Metrics != nil && n > 0 {
		ss.srv.Metrics.Relayed(store.ScopeSMTP, true, n)
	}
	switch {
	case readErr != nil:
		ss.dropUpstream()
		log.Info("smtp message aborted", "size", n, "err", readErr)
		switch {
		case errors.Is(readErr, errBareLineEnd):
			return errBareLineEnd
		case errors.Is(readErr, gosmtp.ErrDataTooLarge):
			return gosmtp.ErrDataTooLarge // RFC 1870 §6.3
		case errors.Is(readErr, gosmtp.ErrTooLongLine):
			return errLineTooLong
		}
		return errAborted
	case writeErr != nil:
		log.Warn("smtp message not relayed", "size", n, "err", writeErr)
		return ss.upstreamReply(writeErr)
	}
	resp, err := w.Close()
	ss.upTx = false
	if err != nil {
		code := 0
		if se, ok := asSMTPError(err); ok {
			code = se.Code
		}
		log.Info("smtp message refused", "size", n, "upstream_code", code, "err", err)
		return ss.upstreamReply(err)
	}
	log.Info("smtp message relayed", "size", n, "upstream_code", 250)
	return acceptedReply(resp.StatusText)
}

// messageBody is the body go-smtp hands over as r, decoded and with its
// line ends checked: dataBody for DATA, lineEndReader over r for BDAT (or
// a go-smtp whose DATA reader dataBody does not know); c is the session's
// connection. extend is called before each read from the client that may
// block. done must be called after the last read: go-smtp reads on from
// there.
func messageBody(r io.Reader, c *gosmtp.Conn, extend func()) (body io.Reader, done func()) {
	if b, ok := newDataBody(r, c, extend); ok {
		return b, b.Done
	}
	return &lineEndReader{r: deadlineReader{r: r, extend: extend}}, func() {}
}

// relayBody copies the body from src to dst through one buffer. It reports
// the bytes read and which side failed.
func relayBody(dst io.Writer, src io.Reader) (n int64, readErr, writeErr error) {
	buf := make([]byte, bodyBufSize)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			n += int64(nr)
			if _, werr := dst.Write(buf[:nr]); werr != nil {
				return n, nil, werr
			}
		}
		if rerr == io.EOF {
			return n, nil, nil
		}
		if rerr != nil {
			return n, rerr, nil
		}
	}
}

// deadlineReader extends the client read deadline before each read, so a
// long message needs only steady progress, not to fit in one ReadTimeout.
type deadlineReader struct {
	r      io.Reader
	extend func()
}

func (d deadlineReader) Read(p []byte) (int, error) {
	d.extend()
	return d.r.Read(p)
}
