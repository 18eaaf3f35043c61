-- KEYS[1]: the reservation; KEYS[2..]: the keys it changed, each with its kind in ARGV.
-- ARGV[1]: reminder id, ARGV[2]: channel, ARGV[1 + i]: kind of KEYS[1 + i].
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 2, #KEYS do
  local kind = ARGV[1 + i]
  if kind == 'c' then
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
      redis.call('DECR', KEYS[i])
    end
  elseif kind == 'r' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  elseif kind == 'd' then
    redis.call('SREM', KEYS[i], ARGV[2])
  end
end
redis.call('DEL', KEYS[1])
return 1
