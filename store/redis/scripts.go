package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts of the Store. Each runs atomically on the node that owns
// its keys; the keys of one call share one hash tag (one Cluster slot),
// except the events channel, which is not a key. Per-account scripts take
// the account's keys in the order of Store.userKeys:
// KEYS[1] account, KEYS[2] apppass, KEYS[3] tags, KEYS[4] lastused.

// Results of scriptCreateAppPassword.
const (
	createOK = iota
	createNoAccount
	createDuplicateID
	createDuplicateTag
)

// scriptCreateAppPassword stores one app password and its index entry.
// ARGV: id, hex(tag), JSON record.
var scriptCreateAppPassword = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 2 end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 0 then return 3 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[1])
return 0
`)

// scriptFindAppPassword returns {record, lastused or nil} of the app
// password indexed under a tag, or nil. KEYS: apppass, tags, lastused.
// ARGV: hex(tag).
var scriptFindAppPassword = goredis.NewScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if not id then return false end
local rec = redis.call('HGET', KEYS[1], id)
if not rec then return redis.error_reply('tags index points at a missing app password') end
return {rec, redis.call('HGET', KEYS[3], id)}
`)

// scriptRevokeAppPassword deletes one app password, its index entry and
// last use, then publishes its event; returns 0 if there was none.
// KEYS: apppass, tags, lastused. ARGV: id, channel, event JSON.
var scriptRevokeAppPassword = goredis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
local tags = redis.call('HGETALL', KEYS[2])
for i = 1, #tags, 2 do
  if tags[i+1] == ARGV[1] then redis.call('HDEL', KEYS[2], tags[i]) end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`)

// scriptRevokeAll deletes every app password of n accounts, all or
// nothing. KEYS: the four keys of each account in turn. ARGV: channel,
// event kind, then the n usernames. Returns {0, i} if account i (1-based)
// does not exist (nothing deleted), else {1, ids of account 1, ...}; one
// event per deleted id is published.
var scriptRevokeAll = goredis.NewScript(`
local n = #ARGV - 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[4*i-3]) == 0 then return {0, i} end
end
local out = {1}
for i = 1, n do
  local ids = redis.call('HKEYS', KEYS[4*i-2])
  redis.call('DEL', KEYS[4*i-2], KEYS[4*i-1], KEYS[4*i])
  for _, id in ipairs(ids) do
    redis.call('PUBLISH', ARGV[1], cjson.encode({kind = ARGV[2], username = ARGV[i+2], app_password_id = id}))
  end
  out[#out+1] = ids
end
return out
`)

// scriptTouchAppPassword records a last use if the app password still
// exists; returns 0 if it does not. KEYS: apppass, lastused. ARGV: id,
// JSON store.LastUse.
var scriptTouchAppPassword = goredis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// scriptLookupKey returns the stored lookup key, storing ARGV[1] first if
// there is none.
var scriptLookupKey = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
`)

// scriptIncr adds ARGV[1] to counter KEYS[1]; a new counter expires
// ARGV[2] milliseconds later, an existing one keeps its expiry (a fixed
// window).
var scriptIncr = goredis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`)

// scriptChange applies one store.Incr to counter KEYS[1]. ARGV: n, the
// window in milliseconds (for a positive n), reset (1 or 0). A positive n
// is scriptIncr; 0 reads; a negative n never creates the counter and
// never takes it below zero. INCRBY keeps the counter's expiry.
var scriptChange = goredis.NewScript(`
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
local n = tonumber(ARGV[1])
if n > 0 then
  local v = redis.call('INCRBY', KEYS[1], n)
  if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return v
end
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
cur = tonumber(cur)
if n == 0 then return cur end
if cur + n < 0 then n = -cur end
return redis.call('INCRBY', KEYS[1], n)
`)
