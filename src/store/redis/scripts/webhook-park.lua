-- Parks one delivery (its tries spent), only while its endpoint's queue exists: a delivery of a
-- deleted endpoint has nowhere to be parked, and must not leave a key nothing deletes.
-- KEYS[1]  the endpoint's queue (stream)
-- KEYS[2]  its attempts (hash: stream position -> attempts JSON)
-- KEYS[3]  its parked deliveries (hash: event id -> delivery JSON)
-- ARGV[1]  the consumer group
-- ARGV[2]  the delivery's stream position
-- ARGV[3]  its event id
-- ARGV[4]  the parked delivery JSON
-- Returns 1 when parked, 0 when the endpoint is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return 1
