-- Replaces one webhook's record, only if it is still the one the caller read.
-- KEYS[1]  the hash of webhook records (id -> JSON)
-- ARGV[1]  the webhook id
-- ARGV[2]  the record's JSON text as it was read
-- ARGV[3]  the new record's JSON text
-- Returns 1 when replaced; otherwise nothing is written and it returns the stored text, or nil
-- when the webhook is gone (deleted meanwhile: an update must not bring it back).
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return nil end
if stored ~= ARGV[2] then return stored end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
