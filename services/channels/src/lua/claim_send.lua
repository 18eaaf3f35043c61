-- KEYS[1]: the reminder's "sent" mark, KEYS[2]: its send claim.
-- ARGV[1]: this claim's token, ARGV[2]: claim TTL (s), ARGV[3]: a call this old (ms) has ended.
local sent = redis.call('GET', KEYS[1])
if sent then
  return {'sent', sent}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {'mine', ''}
end
local holder = redis.call('GET', KEYS[2]) or ''
local began = string.match(holder, '^calling:[^:]*:(%d+)$')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if began and now - tonumber(began) > tonumber(ARGV[3]) then
  return {'unknown', began}
end
return {'busy', ''}
