package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passgate/passgate/internal/testcert"
)

// withRedis is base plus a [store] table and a [store.redis] table with
// the given lines; [store.redis] starts at line 10.
func withRedis(backend string, redisLines ...string) string {
	return base + lines(`[store]`, `backend = "`+backend+`"`, `[store.redis]`) + lines(redisLines...)
}

func TestRedisDefaults(t *testing.T) {
	c, err := Parse([]byte(base), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Store
	if s.Backend != StoreBolt {
		t.Errorf("backend = %q, want bolt", s.Backend)
	}
	r := s.Redis
	if r.KeyPrefix != "passgate" || r.Timeout.Duration != time.Second || r.TLS || r.TLSConfig != nil ||
		r.Password != "" || r.PasswordFrom != "" || r.URL != "" || len(r.Addresses) != 0 {
		t.Errorf("redis defaults = %+v", r)
	}
}

func TestRedisParse(t *testing.T) {
	dir := fixture(t)
	writeFile(t, filepath.Join(dir, "redis-password"), "from-file\r\n")
	tests := []struct {
		name  string
		data  string
		env   map[string]string
		check func(t *testing.T, r Redis)
	}{
		{"URL", withRedis("redis", `url = "redis://pg:inline-pw@redis.internal:6380/2"`, `timeout = "250ms"`, `key_prefix = "pg:prod"`),
			nil, func(t *testing.T, r Redis) {
				if r.Username != "pg" || r.Password != "inline-pw" || r.PasswordFrom != "store.redis.url" ||
					r.TLS || r.TLSConfig != nil || r.Timeout.Duration != 250*time.Millisecond || r.KeyPrefix != "pg:prod" {
					t.Errorf("redis = %+v", r)
				}
			}},
		{"RedissWithCAAndPasswordFile", withRedis("redis", `url = "rediss://redis.internal"`, `ca_file = "ca.pem"`,
			`username = "pg"`, `password_file = "redis-password"`), nil, func(t *testing.T, r Redis) {
			if r.Username != "pg" || r.Password != "from-file" || r.PasswordFrom != "file "+filepath.Join(dir, "redis-password") ||
				!r.TLS || r.CAFile != filepath.Join(dir, "ca.pem") {
				t.Errorf("redis = %+v", r)
			}
			if cfg := r.TLSConfig; cfg == nil || cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "" {
				t.Errorf("TLSConfig = %+v", cfg)
			}
		}},
		{"Sentinel", withRedis("redis", `addresses = ["10.0.0.1:26379", "[2001:db8::1]:26379"]`, `master_name = "mymaster"`,
			`password = "inline"`, `tls = true`), nil, func(t *testing.T, r Redis) {
			if len(r.Addresses) != 2 || r.MasterName != "mymaster" || r.Password != "inline" ||
				r.PasswordFrom != "store.redis.password" || r.TLSConfig == nil || r.TLSConfig.RootCAs != nil {
				t.Errorf("redis = %+v", r)
			}
		}},
		{"Cluster", withRedis("redis", `addresses = ["cfg.cache.example:6379"]`, `cluster = true`), nil,
			func(t *testing.T, r Redis) {
				if !r.Cluster || r.Password != "" || r.PasswordFrom != "" {
					t.Errorf("redis = %+v", r)
				}
			}},
		{"EnvWins", withRedis("redis", `url = "redis://:url-pw@localhost"`), map[string]string{redisPasswordEnv: "env-pw"},
			func(t *testing.T, r Redis) {
				if r.Password != "env-pw" || r.PasswordFrom != "env "+redisPasswordEnv {
					t.Errorf("password from %q", r.PasswordFrom)
				}
			}},
		{"EnvMeansFileNotRead", withRedis("redis", `addresses = ["localhost:6379"]`, `password_file = "missing"`),
			map[string]string{redisPasswordEnv: "env-pw"}, func(t *testing.T, r Redis) {
				if r.Password != "env-pw" {
					t.Errorf("password from %q", r.PasswordFrom)
				}
			}},
		{"BoltIgnoresMissingAddress", withRedis("bolt", `key_prefix = "x"`), nil, func(t *testing.T, r Redis) {
			if r.KeyPrefix != "x" {
				t.Errorf("redis = %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), dir, envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Store.Redis)
		})
	}
}

func TestRedisErrors(t *testing.T) {
	dir := fixture(t)
	tests := []struct {
		name string
		data string
		key  string
		line int
		msg  string
	}{
		{"UnknownBackend", base + lines(`[store]`, `backend = "etcd"`), "store.backend", 9, `"etcd" is not one of bolt, redis`},
		{"NoAddress", withRedis("redis"), "store.backend", 9, "needs store.redis.url or store.redis.addresses"},
		{"Both", withRedis("redis", `url = "redis://localhost"`, `addresses = ["localhost:6379"]`), "store.redis.addresses", 12, "only one"},
		{"Scheme", withRedis("redis", `url = "http://u:Secr3tPw@localhost"`), "store.redis.url", 11, "scheme"},
		{"Query", withRedis("redis", `url = "redis://u:Secr3tPw@localhost/?dial_timeout=1s"`), "store.redis.url", 11, "query"},
		{"BadPort", withRedis("redis", `url = "redis://u:Secr3tPw@localhost:99999"`), "store.redis.url", 11, "port"},
		{"NotAURL", withRedis("redis", `url = "redis://u:Secr3tPw@local host"`), "store.redis.url", 11, "not a URL"},
		{"NoHost", withRedis("redis", `url = "redis://"`), "store.redis.url", 11, "no host"},
		{"BadDB", withRedis("redis", `url = "redis://u:Secr3tPw@localhost/zero"`), "store.redis.url", 11, "database number"},
		{"ClusterDB", withRedis("redis", `url = "redis://localhost/3"`, `cluster = true`), "store.redis.url", 11, "only database 0"},
		{"SentinelURL", withRedis("redis", `url = "redis://localhost"`, `master_name = "m"`), "store.redis.master_name", 12, "addresses"},
		{"SentinelCluster", withRedis("redis", `addresses = ["a:1"]`, `master_name = "m"`, `cluster = true`), "store.redis.cluster", 13, "only one"},
		{"BadAddress", withRedis("redis", `addresses = ["localhost"]`), "store.redis.addresses", 11, "not host:port"},
		{"AddressWithoutPort", withRedis("redis", `addresses = ["localhost:"]`), "store.redis.addresses", 11, "host and a port"},
		{"UserTwice", withRedis("redis", `url = "redis://pg@localhost"`, `username = "other"`), "store.redis.username", 12, "names a user"},
		{"PasswordTwice", withRedis("redis", `url = "redis://pg:Secr3tPw@localhost"`, `password = "Secr3tPw2"`), "store.redis.password", 12, "once"},
		{"PasswordAndFile", withRedis("redis", `addresses = ["a:1"]`, `password = "Secr3tPw"`, `password_file = "master-secret"`), "store.redis.password", 12, "once"},
		{"MissingPasswordFile", withRedis("redis", `addresses = ["a:1"]`, `password_file = "nope"`), "store.redis.password_file", 12, "no such file"},
		{"EmptyPasswordFile", withRedis("redis", `addresses = ["a:1"]`, `password_file = "empty-secret"`), "store.redis.password_file", 12, "empty"},
		{"CAWithoutTLS", withRedis("redis", `url = "redis://localhost"`, `ca_file = "ca.pem"`), "store.redis.ca_file", 12, "TLS is off"},
		{"CANotPEM", withRedis("redis", `url = "rediss://localhost"`, `ca_file = "not-pem.txt"`), "store.redis.ca_file", 12, "no PEM"},
		{"Prefix", withRedis("redis", `addresses = ["a:1"]`, `key_prefix = "pass{gate}"`), "store.redis.key_prefix", 12, "only letters"},
		{"PrefixGlob", withRedis("bolt", `key_prefix = "pg*"`), "store.redis.key_prefix", 11, "only letters"},
		{"NegativeTimeout", withRedis("redis", `addresses = ["a:1"]`, `timeout = "-1s"`), "store.redis.timeout", 12, "negative"},
		{"TinyTimeout", withRedis("redis", `addresses = ["a:1"]`, `timeout = "1ms"`), "store.redis.timeout", 12, "minimum"},
		{"TimeoutUnit", withRedis("redis", `addresses = ["a:1"]`, `timeout = "1"`), "store.redis.timeout", 12, "no unit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), dir, nil)
			e := errorFor(t, err, tt.key)
			if e.Line != tt.line || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error %q (line %d), want line %d saying %q", e, e.Line, tt.line, tt.msg)
			}
			if strings.Contains(err.Error(), "Secr3t") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestRedisExample keeps the "default" comments of [store] and
// [store.redis] in passgate.example.toml true.
func TestRedisExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "passgate.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testcert.Write(t, dir, "")
	writeFile(t, filepath.Join(dir, "master-secret"), "example-secret\n")
	data := strings.NewReplacer("/etc/passgate/", dir+"/", "/var/lib/passgate/", dir+"/").Replace(string(raw))
	c, err := Parse([]byte(data), "/nonexistent", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse([]byte(base), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, def := c.Store, d.Store
	if e.Backend != def.Backend || e.Redis.KeyPrefix != def.Redis.KeyPrefix || e.Redis.Timeout != def.Redis.Timeout {
		t.Errorf("example store %+v, defaults %+v", e, def)
	}
}
