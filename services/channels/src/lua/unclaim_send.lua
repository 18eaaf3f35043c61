-- KEYS[1]: the send claim; ARGV[1]: its token. Only the holder gives it up.
local holder = redis.call('GET', KEYS[1])
if holder and (holder == ARGV[1] or string.find(holder, 'calling:' .. ARGV[1] .. ':', 1, true) == 1) then
  return redis.call('DEL', KEYS[1])
end
return 0
