-- KEYS[1]: this reminder's reservation; KEYS[2]: the debtor's "budget known" mark;
-- KEYS[2 + i]: the state of cap i.
-- ARGV[1]: now (ms), ARGV[2]: reservation TTL (s), ARGV[3]: channel, ARGV[4]: reminder id,
-- ARGV[5]: '1' to record a contact already made (rebuilding from the delivery records: no
-- check, no "known" mark needed), then per cap: kind ('c' counter, 'r' rolling window,
-- 'd' distinct channels), max, span (TTL in seconds for 'c' and 'd'; window length in ms for
-- 'r').
-- Returns {1, 0, 0} when reserved, {0, i, room at (ms)} when cap i is full, and {-1, 0, 0}
-- when Redis does not know this debtor's budget (it lost its data, or never had it): nothing
-- is reserved until the budget has been rebuilt from the delivery records (fail closed).
local replay = ARGV[5] == '1'
if not replay and redis.call('EXISTS', KEYS[2]) == 0 then
  return {-1, 0, 0}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {1, 0, 0}
end
local now = tonumber(ARGV[1])
local channel = ARGV[3]
local member = ARGV[4]
local caps = #KEYS - 2
if not replay then
  for i = 1, caps do
    local kind, max, span = ARGV[3 + 3 * i], tonumber(ARGV[4 + 3 * i]), tonumber(ARGV[5 + 3 * i])
    local key = KEYS[2 + i]
    if kind == 'c' then
      if tonumber(redis.call('GET', key) or '0') >= max then
        return {0, i, 0}
      end
    elseif kind == 'r' then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
      local used = redis.call('ZCARD', key)
      if used >= max then
        -- Room returns when the entry that keeps the count at max leaves the window.
        local entry = redis.call('ZRANGE', key, used - max, used - max, 'WITHSCORES')
        return {0, i, tonumber(entry[2]) + span}
      end
    elseif kind == 'd' then
      if redis.call('SISMEMBER', key, channel) == 0 and redis.call('SCARD', key) >= max then
        return {0, i, 0}
      end
    end
  end
end
local undo = {}
for i = 1, caps do
  local kind, span = ARGV[3 + 3 * i], tonumber(ARGV[5 + 3 * i])
  local key = KEYS[2 + i]
  if kind == 'c' then
    -- A counter lives for its calendar period: its TTL is set once, when the period starts.
    if redis.call('INCR', key) == 1 then
      redis.call('EXPIRE', key, span)
    end
    table.insert(undo, 'c' .. key)
  elseif kind == 'r' then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, span)
    table.insert(undo, 'r' .. key)
  elseif kind == 'd' then
    if redis.call('SADD', key, channel) == 1 then
      redis.call('EXPIRE', key, span)
      table.insert(undo, 'd' .. key)
    end
  end
end
-- The reservation remembers its channel and what to undo, one line each.
table.insert(undo, 1, channel)
redis.call('SET', KEYS[1], table.concat(undo, '\n'), 'EX', ARGV[2])
if not replay then
  -- The mark outlives every reservation it vouches for.
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return {1, 0, 0}
