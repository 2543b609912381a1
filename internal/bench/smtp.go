package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// smtp submits SMTPMessages messages of SMTPSize bytes, one session each
// (connect to QUIT, the login included, as a client sending one message
// does). The figure is message bytes per second (MB/s, 1e6); work is in GiB.
func (r *runner) smtp(ctx context.Context, t Target, addr string, tlsConf *tls.Config) (sample, error) {
	data := r.smtpData(t)
	start := time.Now()
	for range r.cfg.SMTPMessages {
		if err := submit(ctx, addr, tlsConf, r.cfg.IOTimeout, t.User, t.Secret, r.cfg.sender(t), r.cfg.recipient(t), data); err != nil {
			return sample{}, err
		}
	}
	elapsed := time.Since(start)
	n := float64(r.cfg.SMTPMessages) * float64(r.cfg.SMTPSize)
	rate := n / elapsed.Seconds() / 1e6
	return sample{values: []float64{rate}, work: n / (1 << 30),
		note: fmt.Sprintf("%.1f MB/s (%d × %d bytes in %.2fs)", rate, r.cfg.SMTPMessages, r.cfg.SMTPSize, elapsed.Seconds())}, nil
}

// smtpData is the DATA of t's messages, made once per sender and recipient.
func (r *runner) smtpData(t Target) []byte {
	key := r.cfg.sender(t) + "\x00" + r.cfg.recipient(t)
	if d, ok := r.data[key]; ok {
		return d
	}
	d := dataOf(message(r.cfg.SMTPSize, r.cfg.sender(t), r.cfg.recipient(t)))
	r.data[key] = d
	return d
}
