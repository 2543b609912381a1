package redis

import (
	"context"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// watchSentinels follows the master switches that the Sentinels announce.
// go-redis moves its command connections to a new master by itself, but
// not a Pub/Sub connection that still works: after a planned failover the
// old master stays up (as a replica, eventually) and a subscription on it
// would hear nothing published on the new one. So every Sentinel's
// +switch-master channel is watched, and each switch of our master moves
// every subscription (see forward). The watchers end with Close.
func (s *Store) watchSentinels(uo *goredis.UniversalOptions) {
	for _, addr := range uo.Addrs {
		sc := goredis.NewSentinelClient(&goredis.Options{
			Addr:                     addr,
			Username:                 uo.SentinelUsername,
			Password:                 uo.SentinelPassword,
			TLSConfig:                uo.TLSConfig,
			DialTimeout:              uo.DialTimeout,
			ReadTimeout:              uo.ReadTimeout,
			WriteTimeout:             uo.WriteTimeout,
			DialerRetries:            1,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		ps := sc.Subscribe(context.Background(), "+switch-master")
		ch := ps.Channel(goredis.WithChannelHealthCheckInterval(s.timeout))
		s.watchers = append(s.watchers, func() {
			ps.Close()
			sc.Close()
		})
		s.subWG.Add(1)
		go func() {
			defer s.subWG.Done()
			for msg := range ch {
				// "<master name> <old ip> <old port> <new ip> <new port>"
				if name, _, _ := strings.Cut(msg.Payload, " "); name == uo.MasterName {
					s.masterSwitched()
				}
			}
		}()
	}
}

// masterSwitched tells every subscription to move to the new master.
func (s *Store) masterSwitched() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		select {
		case sub.switched <- struct{}{}:
		default: // already told
		}
	}
}
