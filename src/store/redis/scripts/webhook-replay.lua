-- Puts parked deliveries back at the end of a webhook's queue, each at most once.
-- KEYS[1]  the webhook's parked hash (event id -> delivery JSON)
-- KEYS[2]  the webhook's queue stream
-- ARGV     the event ids to replay, in the order to replay them
-- Returns how many were put back. An event replayed concurrently is moved by one call only;
-- nothing is moved once the queue is gone (the webhook was deleted).
local moved = 0
for _, id in ipairs(ARGV) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    local d = cjson.decode(raw)
    local added = redis.call('XADD', KEYS[2], 'NOMKSTREAM', '*',
      'e', d.eventId, 'u', d.userId, 't', d.type, 'c', tostring(d.createdAt), 'b', d.body)
    if not added then
      return moved
    end
    redis.call('HDEL', KEYS[1], id)
    moved = moved + 1
  end
end
return moved
