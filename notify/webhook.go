package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/passgate/passgate/store"
)

// Webhook defaults, used when the field is zero.
const (
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultWebhookAttempts = 4
	DefaultWebhookBackoff  = time.Second
)

// Signature headers of a webhook request. The signature is
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)), where
// timestamp is the X-Passgate-Timestamp header (Unix seconds): a receiver
// recomputes it, compares in constant time, and refuses old timestamps
// so that a captured request cannot be replayed.
const (
	HeaderSignature = "X-Passgate-Signature"
	HeaderTimestamp = "X-Passgate-Timestamp"
	// HeaderDelivery is the same on every attempt of one notification, so
	// that a receiver can drop a retry it already handled.
	HeaderDelivery = "X-Passgate-Delivery"
)

// Webhook posts notifications as JSON to an operator's URL.
type Webhook struct {
	// URL receives a POST per notification; required.
	URL string
	// Secret keys the signature; required.
	Secret []byte
	// Client sends the requests. If nil, an http.Client with
	// DefaultWebhookTimeout.
	Client *http.Client
	// Attempts is how many times a notification is tried (network
	// errors, 429 and 5xx are retried; other answers are final). Zero:
	// DefaultWebhookAttempts.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each
	// next one. Zero: DefaultWebhookBackoff.
	Backoff time.Duration
	// Sleep waits d or until ctx ends. If nil, a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Payload is the JSON body of a webhook request.
type Payload struct {
	ID              string        `json:"id"`
	Event           string        `json:"event"`
	Username        string        `json:"username"`
	Time            time.Time     `json:"time"`
	Protocol        string        `json:"protocol,omitempty"`
	Remote          string        `json:"remote,omitempty"`
	AppPasswordID   string        `json:"app_password_id,omitempty"`
	AppPasswordName string        `json:"app_password_name,omitempty"`
	Actor           string        `json:"actor,omitempty"`
	Device          *store.Device `json:"device,omitempty"`
	RemovalOn       time.Time     `json:"removal_on,omitzero"`
	// Language, Subject and Text are the notification as the owner's
	// mail says it.
	Language string `json:"language"`
	Subject  string `json:"subject"`
	Text     string `json:"text"`
}

// Post sends p, retrying as Attempts and Backoff say.
func (w *Webhook) Post(ctx context.Context, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	r := retry{attempts: orDefault(w.Attempts, DefaultWebhookAttempts),
		backoff: orDefault(w.Backoff, DefaultWebhookBackoff), sleep: w.Sleep}
	if err := r.do(ctx, func() error { return w.post(ctx, p.ID, body) }); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// post makes one attempt.
func (w *Webhook) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "passgate-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sign(w.Secret, ts, body))
	req.Header.Set(HeaderDelivery, id)
	resp, err := w.client().Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("answered %s", resp.Status)
	default:
		return fmt.Errorf("%w: answered %s", errPermanent, resp.Status)
	}
}

// sign is the value of HeaderSignature.
func sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *Webhook) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{Timeout: DefaultWebhookTimeout}
}

func (w *Webhook) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// orDefault is v, or def if v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
