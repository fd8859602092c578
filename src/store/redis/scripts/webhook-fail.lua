-- Records a failed attempt of one delivery, only while its endpoint's queue exists: an attempt
-- that ends after its endpoint was deleted must not leave a key nothing deletes.
-- KEYS[1]  the endpoint's queue (stream)
-- KEYS[2]  its attempts (hash: stream position -> attempts JSON)
-- ARGV[1]  the delivery's stream position
-- ARGV[2]  the attempts JSON
-- Returns 1 when recorded, 0 when the endpoint is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
