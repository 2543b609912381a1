// Package redis is the store.Store backend that lets many passgate
// instances share one Redis: standalone, Sentinel or Cluster, through
// go-redis's UniversalClient. It also implements store.Counters,
// store.AuditLog and store.KV.
//
// Layout (P is Options.KeyPrefix, U a username). Every key of one account
// carries the hash tag {u:U}, so the multi-key scripts of one account run in
// one Cluster slot:
//
//	P:{u:U}:account   string  JSON store.Account
//	P:{u:U}:apppass   hash    id -> JSON store.AppPassword (LastUsed as created)
//	P:{u:U}:tags      hash    hex(tag) -> id (the index of FindAppPassword)
//	P:{u:U}:lastused  hash    id -> JSON store.LastUse (TouchAppPassword)
//	P:{u:U}:audit     list    "SEQ JSON" store.AuditRecord, newest first, capped
//	P:{u:U}:auditfail list    the same for failed attempts, capped apart
//	P:{u:U}:auditseq  string  the append counter that numbers both lists
//	P:accounts        zset    every username, score 0 (ListAccounts, byte order)
//	P:meta:lookupkey  string  the 32-byte lookup key
//	P:cnt:{K}         string  counter K (store.Counters), with a TTL
//	P:kv:{K}          string  short-lived value K (store.KV), with a TTL
//	P:events          pub/sub channel of JSON store.Event
//
// Every write is one Lua script or one MULTI/EXEC, and the event it causes
// is published from inside it, so an event goes out exactly when its change
// commits. Two writes span slots and are built to look atomic instead:
// CreateAccount (the accounts index is written first, and ListAccounts
// skips an entry without an account) and RevokeAllAppPasswords in Cluster
// mode (atomic per account; see its doc).
//
// Failure behaviour: each call gives up after 1.5 × Options.Timeout (1.5 s
// by default), retries included, and a Redis failure is returned wrapping
// store.ErrUnavailable. Writes are never retried by the client, so none is
// applied twice; but, as with any network store, a write that failed with
// ErrUnavailable after it was sent may still have been applied. A Store
// recovers by itself within about a second of Redis coming back;
// subscriptions reconnect too (see Subscribe).
//
// Typical use:
//
//	st, err := redis.Open(ctx, redis.Options{URL: "rediss://passgate:pw@redis.internal:6380/0", Logger: log})
//	if err != nil { return err }
//	defer st.Close()
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/passgate/passgate/store"
)

// Defaults of Options.
const (
	DefaultKeyPrefix = "passgate"
	DefaultTimeout   = time.Second
)

// Options configures Open. Exactly one of URL and Addrs must be set.
type Options struct {
	// URL is redis://[user[:password]@]host[:port][/db], or rediss:// for
	// TLS. It selects a standalone server (or, with Cluster, a cluster
	// seed). Query parameters are refused: use the fields below.
	URL string
	// Addrs are host:port addresses: with MasterName the Sentinels; else
	// two or more (or one with Cluster) select Cluster mode; one alone is
	// a standalone server.
	Addrs []string
	// MasterName is the Sentinel master name; empty: no Sentinel.
	MasterName string
	// Cluster forces Cluster mode with a single seed address (e.g. a
	// cloud configuration endpoint).
	Cluster bool
	// DB is the database number (standalone and Sentinel only); a URL's
	// /db path sets it too.
	DB int
	// Username and Password authenticate (Redis 6 ACL, or AUTH with a
	// password only). Non-empty values override those of URL.
	Username string
	Password string
	// TLSConfig, if non-nil, enables TLS with this configuration (its
	// ServerName defaults to each node's host). Nil: TLS only for
	// rediss://, with the system roots.
	TLSConfig *tls.Config
	// KeyPrefix starts every key and the event channel. If empty,
	// DefaultKeyPrefix. Letters, digits and ". _ - : /" only.
	KeyPrefix string
	// Timeout bounds each dial, read and write; every call gives up after
	// 1.5 × Timeout. If zero (or negative), DefaultTimeout.
	Timeout time.Duration
	// Logger receives warnings (dropped or lost events). If nil,
	// slog.Default().
	Logger *slog.Logger
}

// Store is a store.Store and store.Counters on Redis. It is safe for
// concurrent use.
type Store struct {
	rdb         goredis.UniversalClient
	cluster     bool
	prefix      string
	timeout     time.Duration // per dial, read, write
	callTimeout time.Duration // per Store call
	log         *slog.Logger

	keyMu sync.Mutex
	key   []byte // cached lookup key

	subMu    sync.Mutex
	subs     map[*subscription]struct{}
	watchers []func()       // close the Sentinel watchers
	subWG    sync.WaitGroup // subscriptions and watchers
	closed   bool
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Counters = (*Store)(nil)
)

// Open connects to Redis as opts say and checks the connection with a
// PING. Errors never contain the password; a failure to reach Redis wraps
// store.ErrUnavailable.
func Open(ctx context.Context, opts Options) (*Store, error) {
	uo, err := opts.universal()
	if err != nil {
		return nil, fmt.Errorf("redis: open: %w", err)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := CheckKeyPrefix(prefix); err != nil {
		return nil, fmt.Errorf("redis: open: %w", err)
	}
	s := &Store{
		rdb:         goredis.NewUniversalClient(uo),
		prefix:      prefix,
		timeout:     uo.DialTimeout,
		callTimeout: uo.DialTimeout * 3 / 2,
		log:         opts.Logger,
		subs:        make(map[*subscription]struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	_, s.cluster = s.rdb.(*goredis.ClusterClient)
	err = s.do(ctx, "open", func(ctx context.Context) error {
		return s.rdb.Ping(ctx).Err()
	})
	if err != nil {
		s.rdb.Close()
		return nil, err
	}
	if uo.MasterName != "" {
		s.watchSentinels(uo)
	}
	return s, nil
}

// universal turns opts into go-redis options.
func (o Options) universal() (*goredis.UniversalOptions, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	uo := &goredis.UniversalOptions{
		Addrs:         o.Addrs,
		MasterName:    o.MasterName,
		IsClusterMode: o.Cluster,
		DB:            o.DB,
		Username:      o.Username,
		Password:      o.Password,
		DialTimeout:   timeout,
		ReadTimeout:   timeout,
		WriteTimeout:  timeout,
		PoolTimeout:   timeout,
		// Deadlines of the per-call context apply to the socket.
		ContextTimeoutEnabled: true,
		// One dial attempt, no command retries: a write is applied at
		// most once, and a dead Redis answers quickly.
		DialerRetries:            1,
		MaxRetries:               -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	switch {
	case o.URL != "" && len(o.Addrs) > 0:
		return nil, errors.New("set URL or Addrs, not both")
	case o.URL == "" && len(o.Addrs) == 0:
		return nil, errors.New("no address: set URL or Addrs")
	case o.MasterName != "" && o.Cluster:
		return nil, errors.New("set MasterName (Sentinel) or Cluster, not both")
	case o.URL != "":
		if o.MasterName != "" {
			return nil, errors.New("a Sentinel master name needs Addrs (the Sentinels), not URL")
		}
		if err := o.fromURL(uo); err != nil {
			return nil, err
		}
	}
	if o.TLSConfig != nil {
		uo.TLSConfig = o.TLSConfig.Clone()
	}
	if uo.DB != 0 && o.MasterName == "" && (o.Cluster || len(uo.Addrs) > 1) {
		return nil, fmt.Errorf("database %d: Cluster mode has only database 0", uo.DB)
	}
	return uo, nil
}

// fromURL fills uo from o.URL; explicit fields of o win. Errors never
// quote the URL, which may hold a password.
func (o Options) fromURL(uo *goredis.UniversalOptions) error {
	u, err := url.Parse(o.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("invalid URL: %v", err)
	}
	if u.RawQuery != "" {
		return fmt.Errorf("URL %s: query parameters are not supported", u.Redacted())
	}
	po, err := goredis.ParseURL(u.String())
	if err != nil {
		return fmt.Errorf("URL %s: %v", u.Redacted(), err)
	}
	uo.Addrs = []string{po.Addr}
	if o.DB == 0 {
		uo.DB = po.DB
	}
	if o.Username == "" {
		uo.Username = po.Username
	}
	if o.Password == "" {
		uo.Password = po.Password
	}
	if po.TLSConfig != nil {
		uo.TLSConfig = &tls.Config{ServerName: po.TLSConfig.ServerName, MinVersion: tls.VersionTLS12}
	}
	return nil
}

// CheckKeyPrefix reports whether p can prefix passgate's keys: non-empty,
// letters, digits and ". _ - : /" only (no hash-tag braces, no glob
// characters, which ACL key patterns would interpret).
func CheckKeyPrefix(p string) error {
	if p == "" {
		return errors.New("key prefix is empty")
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '-', r == ':', r == '/':
		default:
			return fmt.Errorf("key prefix %q: %q is not allowed (letters, digits and . _ - : / only)", p, r)
		}
	}
	return nil
}

// Close ends every subscription (closing its channel) and the connections.
// Calls after the first return nil.
func (s *Store) Close() error {
	s.subMu.Lock()
	if s.closed {
		s.subMu.Unlock()
		return nil
	}
	s.closed = true
	for sub := range s.subs {
		sub.ps.Close()
	}
	for _, stop := range s.watchers {
		stop()
	}
	s.subMu.Unlock()
	s.subWG.Wait()
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// logicError marks an error decided by passgate (a store sentinel, an
// invalid argument, the caller's fn), as opposed to a Redis failure.
type logicError struct{ err error }

func (e logicError) Error() string { return e.err.Error() }
func (e logicError) Unwrap() error { return e.err }

// fail returns a logicError built like fmt.Errorf.
func fail(format string, args ...any) error {
	return logicError{fmt.Errorf(format, args...)}
}

// do runs fn under the per-call deadline and wraps its error: passgate's
// own errors as they are, the caller's cancellation as ctx.Err(), anything
// else as store.ErrUnavailable.
func (s *Store) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	err := fn(cctx)
	if err == nil {
		return nil
	}
	var le logicError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("redis: %s: %w", op, le.err)
	case ctx.Err() != nil:
		return fmt.Errorf("redis: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
}

// userKey is the key of one of username's records (see the package doc).
func (s *Store) userKey(username, kind string) string {
	return s.prefix + ":{u:" + username + "}:" + kind
}

// userKeys are the four keys of username, in the order the scripts take
// them.
func (s *Store) userKeys(username string) []string {
	return []string{
		s.userKey(username, "account"),
		s.userKey(username, "apppass"),
		s.userKey(username, "tags"),
		s.userKey(username, "lastused"),
	}
}

func (s *Store) accountsKey() string  { return s.prefix + ":accounts" }
func (s *Store) lookupKeyKey() string { return s.prefix + ":meta:lookupkey" }
func (s *Store) channel() string      { return s.prefix + ":events" }
