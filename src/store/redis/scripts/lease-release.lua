-- Gives up a lease (a webhook's delivery queue, a fleet duty), only if the caller still holds it.
-- KEYS[1]  the lease key
-- ARGV[1]  the owner giving it up
-- Returns 1 when the lease was released, 0 when someone else held it (or no one).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
