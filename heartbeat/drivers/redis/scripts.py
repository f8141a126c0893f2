"""Server-side scripts of the redis driver.

Each script runs atomically on the server, so a beat is one round trip and
a reader never sees half a beat.  Ticks come from the server's own clock
(``TIME``, in microseconds) but never go backwards within a group: a tick
is ``max(server time, group clock + 1)``, so ``tick > cursor`` is exactly
"changed after that read", even if the server's clock is stepped back.
Lua numbers are doubles: ticks (about 2**51) stay exact, and are turned
into text either from TIME's own digits or with ``%.0f``, never with Lua's
default formatting, which rounds them.

Scripts are called by EVALSHA with a digest computed here, so no call
carries a script's source; a server that does not know a script (restarted,
flushed) answers NOSCRIPT once and the driver loads it then.
"""

from __future__ import annotations

import hashlib

#: What the publish script answers when it made this process the member's
#: owner (a first beat, or a new owner's after the data was lost): the
#: client then adds the group to the groups set, which is kept out of the
#: script so that on Redis Cluster a beat touches one slot only.
NEW_OWNER = 2
#: Publish flags, sent only with a beat that changed the state (pushed on
#: the change channel) or with a member leaving (pushed, owner released).
#: A plain beat sends none.
CHANGED = b'c'
LEAVE = b'l'
#: What the publish script answers when a plain beat finds no owner entry
#: (the member was purged or the server lost its data): nothing was
#: written; send the beat again as a change, which carries what a new
#: owner's beat needs.
RESEND = -1


def publish_flag(leave: bool, changed: bool) -> bytes | None:
    """The flag of :data:`PUBLISH` for one beat (None: a plain beat)."""
    if leave:
        return LEAVE
    return CHANGED if changed else None


# KEYS: the group's meta hash (which also routes the call to the group's
# shard on Redis Cluster).
# ARGV: base (``<space>:{<group>}:``), member, owner, seq, and only for a
# change or a leave: record, flag (CHANGED or LEAVE), key space, group.
# A plain beat, nearly every beat, is four short arguments the client
# encoded once per member but the seq: it moves the member's tick in the
# liveness index and its seq, and touches no record, so readers that look
# for changes never see it.  The other key names are derived here rather
# than passed: all are of the group's hash tag, so in one slot.  A plain
# beat is six calls:
# owner check, TIME, clock read and write, liveness index, seq; the rest
# runs only on a change, a leave or a new owner.  The tick is built as
# text straight from TIME (no float formatting) unless the group clock is
# ahead and forces clock + 1.  A dataset found without this member's
# owner entry (purged, or lost with the server's data) gets an epoch
# named by this owner and tick, kept in the group's meta hash: unique, so
# a lost dataset is never mistaken for the one a reader saw.
# Returns 1; NEW_OWNER when it made this process the owner; 0 when
# another process owns the member id; RESEND.
PUBLISH_SOURCE = """
local base, member, owner = ARGV[1], ARGV[2], ARGV[3]
local flag = ARGV[6]
local held = redis.call('HGET', base .. 'owners', member)
if held then
  if held ~= owner then
    return 0
  end
elseif not flag then
  return -1
end
local meta = KEYS[1]
local t = redis.call('TIME')
local s = t[1] .. string.sub('00000' .. t[2], -6)
local tick = tonumber(s)
local clock = tonumber(redis.call('HGET', meta, 'clock') or '0')
if tick <= clock then
  s = string.format('%.0f', clock + 1)
end
redis.call('HSET', meta, 'clock', s)
redis.call('ZADD', base .. 'live', s, member)
redis.call('HSET', base .. 'seqs', member, ARGV[4])
if flag then
  local space, group = ARGV[7], ARGV[8]
  redis.call('HSET', base .. 'reports', member, ARGV[5])
  redis.call('ZADD', base .. 'index', s, member)
  if not held then
    redis.call('ZREM', base .. 'gone', member)
    redis.call('HSETNX', meta, 'epoch', owner .. '@' .. s)
  end
  if flag == 'l' then
    redis.call('HDEL', base .. 'owners', member)
  elseif not held then
    redis.call('HSET', base .. 'owners', member, owner)
  end
  redis.call('PUBLISH', space .. ':changes', group)
  if not held then
    return 2
  end
end
return 1
"""

# KEYS: reports, live, gone, meta, owners (one slot: the group's tag)
# ARGV: member, owner, force ('1' or '0'), expected tick
# The caller adds the group to the groups set itself (another slot).
# Returns {1, ''} when claimed, {0, tick} when a live-looking owner holds
# it (tick: its last beat, for the caller to watch).  With force, the
# claim succeeds only if the holder's tick is still the expected one.
JOIN_SOURCE = """
local member = ARGV[1]
local owner = redis.call('HGET', KEYS[5], member)
if owner and owner ~= ARGV[2] then
  local rec = redis.call('HGET', KEYS[1], member)
  local left = false
  if rec then
    local ok, obj = pcall(cjson.decode, rec)
    left = ok and type(obj) == 'table' and obj['left'] == true
  end
  if not left then
    local tick = redis.call('ZSCORE', KEYS[2], member) or ''
    if ARGV[3] ~= '1' or tick ~= ARGV[4] then
      return {0, tick}
    end
  end
end
redis.call('HSET', KEYS[5], member, ARGV[2])
redis.call('ZREM', KEYS[3], member)
return {1, ''}
"""

# KEYS: one key, only to route the call: the group's meta hash when one
# group is read (on Redis Cluster, its shard), any key otherwise.
# ARGV: key space, epoch candidate, member ttl in us (0: never), gone
#       retention in us, purge limit, discover ('1': add every group of
#       the groups set as new; a single server only), full ('1': read
#       everything), format ('json' or 'pairs'), service_down_time in us,
#       then per group: group, since tick (-1: a group the reader has
#       never read), cutoff of that read, the group's epoch at that read
#       ('' for none), the number of members it was told stale, and their
#       ids.
# Returns {full (1 or 0), {{group, clock, cutoff, {part, ...},
#          {gone1, ...}, now, epoch}, ...}}.
# The parts hold the records changed since the tick, or all of them, a
# thousand members per part, so that a reader decodes a big group a part
# at a time: each part is {records, seqs, ticks}, each one JSON object
# {member: value, ...} (format json: one reply item to parse however many
# members), or {m1, v1, m2, v2, ...} (format pairs: for telling a bad
# record apart).  seqs are those of the same members, ticks the newest
# beat's of every member whose liveness the read tells: the changed ones,
# and in a last part without records, those whose newest beat turned
# older than service_down_time since the last read (at or below cutoff,
# above the reader's) and those told stale before that beat since.
# Unchanged beats of live members cost nothing here.  now and cutoff are
# on the group's clock (never going backwards).  Each
# group's epoch (in its meta hash) names its dataset: a reader whose
# epoch of a group differs reads everything.  On a single server one call
# may read many groups; on Redis Cluster each call reads one, so that it
# touches one slot.
SNAPSHOT_SOURCE = """
local space = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local full = ARGV[7] == '1'
local ttl = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local purge_limit = tonumber(ARGV[5])
local down = tonumber(ARGV[9])
local groups, since, cutoffs, stale, known, seen = {}, {}, {}, {}, {}, {}
local as_json = ARGV[8] == 'json'
local i = 10
while i <= #ARGV do
  local g, n = ARGV[i], tonumber(ARGV[i + 4])
  if not seen[g] then
    seen[g] = true
    groups[#groups + 1] = g
    since[g] = tonumber(ARGV[i + 1])
    cutoffs[g] = tonumber(ARGV[i + 2])
    known[g] = ARGV[i + 3]
    local told = {}
    for j = i + 5, i + 4 + n do
      told[#told + 1] = ARGV[j]
    end
    stale[g] = told
  end
  i = i + 5 + n
end
if ARGV[6] == '1' then
  for _, g in ipairs(redis.call('SMEMBERS', space .. ':groups')) do
    if not seen[g] then
      seen[g] = true
      groups[#groups + 1] = g
      since[g] = -1
      cutoffs[g] = -1
      known[g] = ''
      stale[g] = {}
    end
  end
end
local function key(g, what)
  return space .. ':{' .. g .. '}:' .. what
end
-- A group's epoch: named by its first owner, or by this read if the group
-- has data but lost it (stored then), or not stored for a group without
-- data (a read creates no keys).
local epochs = {}
for _, g in ipairs(groups) do
  local meta = key(g, 'meta')
  local e = redis.call('HGET', meta, 'epoch')
  if not e then
    e = ARGV[2]
    if redis.call('EXISTS', meta) == 1 then
      redis.call('HSET', meta, 'epoch', e)
    end
  end
  epochs[g] = e
  if known[g] ~= '' and known[g] ~= e then
    full = true
  end
end
local function fmt(x)
  return string.format('%.0f', x)
end
local function bump(meta)
  local clock = tonumber(redis.call('HGET', meta, 'clock') or '0')
  local tick = now
  if tick <= clock then tick = clock + 1 end
  redis.call('HSET', meta, 'clock', fmt(tick))
  return tick
end
-- {k1, v1, ...} -> '{"k1":v1,...}': one reply item, parsed in one call
-- however many members (values are JSON already: records, numbers).
local function as_object(flat)
  local parts = {}
  for j = 1, #flat, 2 do
    parts[#parts + 1] = cjson.encode(flat[j]) .. ':' .. flat[j + 1]
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
local function each_chunk(items, fn)
  for first = 1, #items, 1000 do
    local chunk = {}
    for j = first, math.min(first + 999, #items) do
      chunk[#chunk + 1] = items[j]
    end
    fn(chunk)
  end
end
-- Housekeeping: delete members silent for longer than the ttl (on this
-- server's clock) and forget deletions older than the retention.
for _, g in ipairs(groups) do
  local meta = key(g, 'meta')
  if ttl > 0 then
    local old = redis.call('ZRANGEBYSCORE', key(g, 'live'), '-inf',
                           fmt(now - ttl), 'LIMIT', 0, purge_limit)
    for _, m in ipairs(old) do
      local tick = bump(meta)
      redis.call('HDEL', key(g, 'reports'), m)
      redis.call('HDEL', key(g, 'seqs'), m)
      redis.call('HDEL', key(g, 'owners'), m)
      redis.call('ZREM', key(g, 'live'), m)
      redis.call('ZREM', key(g, 'index'), m)
      redis.call('ZADD', key(g, 'gone'), fmt(tick), m)
    end
  end
  local clock = tonumber(redis.call('HGET', meta, 'clock') or '0')
  local limit = clock - retention
  local floor = tonumber(redis.call('HGET', meta, 'floor') or '0')
  if redis.call('ZREMRANGEBYSCORE', key(g, 'gone'), '-inf', fmt(limit)) > 0
      and limit > floor then
    floor = limit
    redis.call('HSET', meta, 'floor', fmt(floor))
  end
  if since[g] >= 0 and since[g] < floor then
    full = true
  end
end
local out = {}
for _, g in ipairs(groups) do
  local clock = redis.call('HGET', key(g, 'meta'), 'clock') or '0'
  local gnow = math.max(now, tonumber(clock))
  local cutoff = gnow - down
  local s = since[g]
  local parts, gone, beats = {}, {}, {}
  local members
  if full or s < 0 then
    members = redis.call('HKEYS', key(g, 'reports'))
  else
    members = redis.call('ZRANGEBYSCORE', key(g, 'index'), '(' .. fmt(s),
                         '+inf')
  end
  each_chunk(members, function(chunk)
    local vals = redis.call('HMGET', key(g, 'reports'), unpack(chunk))
    local nums = redis.call('HMGET', key(g, 'seqs'), unpack(chunk))
    local ticks = redis.call('ZMSCORE', key(g, 'live'), unpack(chunk))
    local records, seqs, told = {}, {}, {}
    for j, m in ipairs(chunk) do
      if vals[j] then
        records[#records + 1] = m
        records[#records + 1] = vals[j]
        seqs[#seqs + 1] = m
        seqs[#seqs + 1] = nums[j] or '0'
      end
      if ticks[j] then
        told[#told + 1] = m
        told[#told + 1] = ticks[j]
      end
    end
    parts[#parts + 1] = {records, seqs, told}
  end)
  if not (full or s < 0) then
    local low = cutoffs[g]
    if cutoff > low then
      beats = redis.call('ZRANGEBYSCORE', key(g, 'live'), '(' .. fmt(low),
                         fmt(cutoff), 'WITHSCORES')
    end
    each_chunk(stale[g], function(chunk)
      local ticks = redis.call('ZMSCORE', key(g, 'live'), unpack(chunk))
      for j, m in ipairs(chunk) do
        if ticks[j] and tonumber(ticks[j]) > cutoff then
          beats[#beats + 1] = m
          beats[#beats + 1] = ticks[j]
        end
      end
    end)
    gone = redis.call('ZRANGEBYSCORE', key(g, 'gone'), '(' .. fmt(s),
                      '+inf')
  end
  if #beats > 0 then
    parts[#parts + 1] = {{}, {}, beats}
  end
  if as_json then
    for _, part in ipairs(parts) do
      part[1], part[2], part[3] = as_object(part[1]), as_object(part[2]),
                                  as_object(part[3])
    end
  end
  out[#out + 1] = {g, clock, fmt(cutoff), parts, gone, fmt(gnow),
                   epochs[g]}
end
if full then
  return {1, out}
end
return {0, out}
"""

# KEYS: the flags hash.  ARGV: name, value, most names beside the known
# ones, then the known names (always counted, set or not).
# Returns 1 when stored, 0 when the name is a new other name and the hash
# holds the most.  A script so that the count and the write cannot be
# interleaved with another host's new name.
SET_FLAG_SOURCE = """
local key, name = KEYS[1], ARGV[1]
if redis.call('HEXISTS', key, name) == 0 then
  local others = redis.call('HLEN', key)
  for i = 4, #ARGV do
    if ARGV[i] == name then
      others = -1
      break
    end
    others = others - redis.call('HEXISTS', key, ARGV[i])
  end
  if others >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', key, name, ARGV[2])
return 1
"""


class LuaScript:
    """A server-side script: its source and the SHA1 digest EVALSHA uses."""

    __slots__ = ('name', 'sha', 'sha_bytes', 'source')

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(),
                                usedforsecurity=False).hexdigest()
        #: The digest as sent, so no call encodes it again.
        self.sha_bytes = self.sha.encode()

    def __repr__(self) -> str:
        return 'LuaScript(%s, %s)' % (self.name, self.sha)


PUBLISH = LuaScript('publish', PUBLISH_SOURCE)
JOIN = LuaScript('join', JOIN_SOURCE)
SNAPSHOT = LuaScript('snapshot', SNAPSHOT_SOURCE)
SET_FLAG = LuaScript('set_flag', SET_FLAG_SOURCE)
ALL = (PUBLISH, JOIN, SNAPSHOT, SET_FLAG)
