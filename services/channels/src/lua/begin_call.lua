-- KEYS[1]: the reminder's "sent" mark, KEYS[2]: its send claim; ARGV[1]: the claim's token,
-- ARGV[2]: how long a calling claim is kept (s). Returns 1 when the call may begin: the claim
-- turns into "calling since <Redis time>", kept as long as a sent mark would be. A claim that
-- lapsed while waiting is taken again unless another worker holds it (0) or sent it (2).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 2
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] and string.find(holder, 'calling:' .. ARGV[1] .. ':', 1, true) ~= 1 then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('SET', KEYS[2], 'calling:' .. ARGV[1] .. ':' .. now, 'EX', ARGV[2])
return 1
