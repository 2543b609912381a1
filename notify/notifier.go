package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/passgate/passgate/authn"
	"github.com/passgate/passgate/store"
)

// DefaultQueueSize is how many records wait for delivery at most when
// Notifier.QueueSize is zero.
const DefaultQueueSize = 1000

// Outcomes of a notification (Metrics, log lines).
const (
	OutcomeMailSent      = "mail-sent"
	OutcomeMailFailed    = "mail-failed"
	OutcomeWebhookSent   = "webhook-sent"
	OutcomeWebhookFailed = "webhook-failed"
	OutcomeNoAddress     = "no-address"
	OutcomeDropped       = "dropped" // the queue was full
	OutcomeCollapsed     = outcomeCollapsed
	OutcomeRateLimited   = outcomeRateLimited
)

// Metrics counts notifications by event (an audit result) and outcome
// (internal/metrics implements it).
type Metrics interface {
	Notified(event, outcome string)
}

// Accounts reads accounts (store.Store implements it).
type Accounts interface {
	GetAccount(ctx context.Context, username string) (store.Account, error)
}

// Notifier tells accounts' owners what happened to their credentials. It
// takes audit records (authn.AuditNotifier) without blocking, keeps the
// ones that notify in a bounded queue, and delivers them one by one in
// the background: by mail to the owner and to the webhook. Set the fields,
// call Start, and Close at the end; they must not change after Start.
type Notifier struct {
	// Accounts gives the owner's language; required.
	Accounts Accounts
	// Mail, if not nil, mails the owner at the address Address finds.
	Mail *Mail
	// Address finds where username's mail goes ("" if nowhere);
	// required with Mail (proxy/smtp's Senders.Primary).
	Address func(ctx context.Context, username string) (string, error)
	// Webhook, if not nil, receives every notification.
	Webhook *Webhook
	// Counters keep the rate limits (limit.go), shared by the instances
	// of one store. If nil, nothing is limited.
	Counters store.Counters
	// MaxPerHour caps the notifications of one account per hour: device
	// events and account changes each (limit.go). Zero:
	// DefaultMaxPerHour; negative: no cap.
	MaxPerHour int
	// Language is the language of an account that has none (a tag of
	// Languages). Empty: Languages[0].
	Language string
	// PortalURL is shown to the owner as where to act; "" leaves it out.
	PortalURL string
	// QueueSize bounds the records waiting for delivery; a record that
	// finds the queue full is dropped (logged and counted). Zero:
	// DefaultQueueSize.
	QueueSize int
	// Metrics, if not nil, counts every outcome.
	Metrics Metrics
	// Logger receives one line per notification. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time (message Date). If nil, time.Now.
	Now func() time.Time

	once   sync.Once
	mu     sync.RWMutex // guards closed against Notify's send
	closed bool
	queue  chan store.AuditRecord
	done   chan struct{}
	ctx    context.Context // of deliveries; cancelled when Close gives up
	cancel context.CancelFunc
}

var _ authn.AuditNotifier = (*Notifier)(nil)

func (n *Notifier) init() {
	n.once.Do(func() {
		size := n.QueueSize
		if size <= 0 {
			size = DefaultQueueSize
		}
		n.queue = make(chan store.AuditRecord, size)
		n.done = make(chan struct{})
		n.ctx, n.cancel = context.WithCancel(context.Background())
	})
}

// Notify queues rec if it is one that notifies (Notifies). It never
// blocks: when the queue is full, or after Close, rec is dropped with a
// warning and counted. The audit record itself is already kept.
func (n *Notifier) Notify(rec store.AuditRecord) {
	if !Notifies(rec) {
		return
	}
	if rec.Device != nil {
		d := *rec.Device // the writer keeps its own
		rec.Device = &d
	}
	n.init()
	n.mu.RLock()
	defer n.mu.RUnlock()
	why := "stopped"
	if !n.closed {
		select {
		case n.queue <- rec:
			return
		default:
			why = "queue full"
		}
	}
	n.logger().Warn("notification dropped: "+why, "user", rec.Username, "event", rec.Result,
		"queue", cap(n.queue))
	n.count(rec.Result, OutcomeDropped)
}

// Start delivers queued notifications in the background until Close.
func (n *Notifier) Start() {
	n.init()
	go n.run()
}

func (n *Notifier) run() {
	defer close(n.done)
	for rec := range n.queue {
		if n.ctx.Err() != nil {
			n.count(rec.Result, OutcomeDropped) // Close gave up
			continue
		}
		n.handle(n.ctx, rec)
	}
}

// Close stops taking records and waits until the queued ones are
// delivered or ctx ends; then the delivery under way is cancelled and the
// rest are left undelivered (logged by the caller with the error).
func (n *Notifier) Close(ctx context.Context) error {
	n.init()
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	select {
	case <-n.done:
		n.cancel()
		return nil
	case <-ctx.Done():
		left := len(n.queue)
		n.cancel()
		return fmt.Errorf("notifications: %d not delivered: %w", left, ctx.Err())
	}
}

// handle tells rec's owner, within the limits.
func (n *Notifier) handle(ctx context.Context, rec store.AuditRecord) {
	log := n.logger().With("user", rec.Username, "event", rec.Result)
	acct, err := n.Accounts.GetAccount(ctx, rec.Username)
	if errors.Is(err, store.ErrNotFound) {
		return // deleted meanwhile: nobody to tell
	}
	if err != nil {
		log.Warn("notification: account lookup failed; default language", "err", err)
	}
	reason, err := n.limit(ctx, rec)
	if err != nil {
		log.Warn("notification: limit not checked; sent anyway", "err", err)
	}
	if reason != "" {
		log.Info("notification not sent", "reason", reason)
		n.count(rec.Result, reason)
		return
	}
	msg, err := Render(n.language(acct.Language), dataOf(rec, n.PortalURL))
	if err != nil {
		log.Error("notification not sent", "err", err)
		return
	}
	if n.Mail != nil {
		n.mail(ctx, log, rec, msg)
	}
	if n.Webhook != nil {
		n.webhook(ctx, log, rec, msg)
	}
}

// mail sends msg to the owner's address.
func (n *Notifier) mail(ctx context.Context, log *slog.Logger, rec store.AuditRecord, msg Message) {
	to, err := n.Address(ctx, rec.Username)
	if err != nil || to == "" {
		log.Warn("notification mail not sent: no address for the account", "err", err)
		n.count(rec.Result, OutcomeNoAddress)
		return
	}
	if err := n.Mail.Send(ctx, rec.Username, to, msg, n.now()); err != nil {
		log.Warn("notification mail failed", "to", to, "err", err)
		n.count(rec.Result, OutcomeMailFailed)
		return
	}
	log.Info("notification mailed", "to", to, "lang", msg.Lang)
	n.count(rec.Result, OutcomeMailSent)
}

// webhook posts rec and msg.
func (n *Notifier) webhook(ctx context.Context, log *slog.Logger, rec store.AuditRecord, msg Message) {
	p := Payload{ID: deliveryID(rec), Event: rec.Result, Username: rec.Username, Time: rec.Time,
		Protocol: rec.Protocol, AppPasswordID: rec.AppPasswordID, AppPasswordName: rec.AppPasswordName,
		Actor: rec.Actor, Device: rec.Device, RemovalOn: rec.RemovalOn,
		Language: msg.Lang, Subject: msg.Subject, Text: msg.Text}
	if rec.Remote.Addr().IsValid() {
		p.Remote = rec.Remote.Addr().String()
	}
	if err := n.Webhook.Post(ctx, p); err != nil {
		log.Warn("notification webhook failed", "err", err)
		n.count(rec.Result, OutcomeWebhookFailed)
		return
	}
	n.count(rec.Result, OutcomeWebhookSent)
}

// deliveryID names one notification: its event, account, password and time.
func deliveryID(rec store.AuditRecord) string {
	return rec.Result + "/" + rec.Username + "/" + rec.AppPasswordID + "/" +
		strconv.FormatInt(rec.Time.UnixNano(), 36)
}

// language is the language of an account whose preference is pref.
func (n *Notifier) language(pref string) string {
	if l := Match(pref); l != "" {
		return l
	}
	if l := Match(n.Language); l != "" {
		return l
	}
	return Languages[0]
}

func (n *Notifier) count(event, outcome string) {
	if n.Metrics != nil {
		n.Metrics.Notified(event, outcome)
	}
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}
