-- Stores one webhook's record, creating it only while fewer than a cap are kept: the count and
-- the write are one step, so creates made at once on several nodes never keep more than the cap.
-- KEYS[1]  the hash of webhook records (id -> JSON)
-- ARGV[1]  the webhook id
-- ARGV[2]  the record's JSON text
-- ARGV[3]  the most records kept ('' for no cap)
-- Returns 1 when stored (created, or replaced: an existing record is never refused), 0 when the
-- cap refused it and nothing was written.
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
