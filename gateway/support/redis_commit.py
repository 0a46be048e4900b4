"""The one Redis script that commits a rule's decision: check what was read, then write.

It holds no business rule. A rule (``rules.py``, ``orders.py``) decides against a node's copy
of the state; the caller lists what the decision read as *guards* and what it changes as
*writes*; :data:`COMMIT` runs them atomically:

1. every guard is checked; the first that fails returns ``{'conflict', guard, field, value
   Redis holds}`` (1-based indexes), followed by the replies of the read commands listed in
   ``ARGV[5]`` (optional, JSON: what the caller needs to decide again without another
   round trip), and nothing is written;
2. with no writes (``ARGV[3] == ''``) it returns ``{'ok', '', ''}``: the copy was current,
   so a refusal or a no-op decided on it stands;
3. with a change list (``ARGV[4]``, JSON), the change counter ``ARGV[1]..'opseq'`` is bumped
   to ``s``; the writes run in order; the change list is appended to the Stream
   ``ARGV[1]..'ops'`` with ``s`` (and ``t``, the W3C ``traceparent`` of the committing step,
   when ``ARGV[6]`` is given and not empty: the trace continues on every node that applies
   the entry); it returns ``{'ok', entry id, s, INCR results...}``.

Guards: ``{'H', key, {fields}, {expected}}`` (HMGET; ``''`` = absent),
``{'L', key, index, expected}`` (LINDEX), ``{'C', key, expected}`` (SCARD),
``{'X', key, expected}`` (EXISTS, ``'1'``/``'0'``), ``{'G', key, expected}`` (GET).

Writes are Redis commands (all arguments strings), plus storage helpers:
``{'STAMP', key, field}`` (HSET to ``s``), ``{'JSET', key, field, name, value}`` (one member
of a JSON object held in a hash field; nothing if the field is absent),
``{'HDELEQ', key, field, value}`` (HDEL only if it holds ``value``),
``{'HMAXN', key, field, n, value}`` (HSET only if the field is absent or holds a JSON object
whose ``n`` is below ``n``: last writer wins on a monotonic order, the read marks),
``{'ZTRIM', zset, hash, max score, n}`` (forget up to ``n`` members scored at most
``max score`` from the sorted set and the hash: retention).

Keys are passed in ``ARGV`` (not ``KEYS``), like every script of this gateway: callers keep
all keys of one commit under one hash tag (``{ld}`` for support, ``{r:<room>}`` for a room).
"""

COMMIT = """
local P = ARGV[1]
local function conflict(i, j, c)
  local out = {'conflict', i, j, c}
  if ARGV[5] and ARGV[5] ~= '' then
    for _, r in ipairs(cjson.decode(ARGV[5])) do out[#out + 1] = redis.call(unpack(r)) end
  end
  return out
end
for i, g in ipairs(cjson.decode(ARGV[2])) do
  local op = g[1]
  if op == 'H' then
    local cur = redis.call('HMGET', g[2], unpack(g[3]))
    for j = 1, #g[3] do
      local c = cur[j] or ''
      if c ~= g[4][j] then return conflict(i, j, c) end
    end
  else
    local c
    if op == 'L' then c = redis.call('LINDEX', g[2], g[3]) or ''
    elseif op == 'C' then c = tostring(redis.call('SCARD', g[2]))
    elseif op == 'X' then c = tostring(redis.call('EXISTS', g[2]))
    elseif op == 'G' then c = redis.call('GET', g[2]) or ''
    else return redis.error_reply('unknown guard ' .. tostring(op)) end
    if c ~= g[#g] then return conflict(i, 1, c) end
  end
end
if ARGV[3] == '' then return {'ok', '', ''} end
local s = ''
if ARGV[4] ~= '' then s = redis.call('INCR', P .. 'opseq') end
local out = {'ok', '', tostring(s)}
for _, w in ipairs(cjson.decode(ARGV[3])) do
  local op = w[1]
  if op == 'STAMP' then redis.call('HSET', w[2], w[3], s)
  elseif op == 'JSET' then
    local raw = redis.call('HGET', w[2], w[3])
    if raw then
      local o = cjson.decode(raw)
      o[w[4]] = w[5]
      redis.call('HSET', w[2], w[3], cjson.encode(o))
    end
  elseif op == 'ZTRIM' then
    local old = redis.call('ZRANGEBYSCORE', w[2], '-inf', w[4], 'LIMIT', 0, tonumber(w[5]))
    for _, id in ipairs(old) do
      redis.call('HDEL', w[3], id)
      redis.call('ZREM', w[2], id)
    end
  elseif op == 'HMAXN' then
    local raw = redis.call('HGET', w[2], w[3])
    local held = -1
    if raw then
      local ok, o = pcall(cjson.decode, raw)
      if ok and type(o) == 'table' and tonumber(o['n']) then held = tonumber(o['n']) end
    end
    if held < tonumber(w[4]) then redis.call('HSET', w[2], w[3], w[5]) end
  elseif op == 'HDELEQ' then
    if redis.call('HGET', w[2], w[3]) == w[4] then redis.call('HDEL', w[2], w[3]) end
  else
    local r = redis.call(unpack(w))
    if op == 'INCR' then out[#out + 1] = r end
  end
end
if ARGV[4] ~= '' then
  if ARGV[6] and ARGV[6] ~= '' then
    out[2] = redis.call('XADD', P .. 'ops', 'MAXLEN', '~', '500000', '*', 'c', ARGV[4], 's', s,
                        't', ARGV[6])
  else
    out[2] = redis.call('XADD', P .. 'ops', 'MAXLEN', '~', '500000', '*', 'c', ARGV[4], 's', s)
  end
end
return out
"""
