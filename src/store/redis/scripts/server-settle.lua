-- After the players a report left out were ended (server-roster.lua), its "l" is dropped, unless
-- a newer report replaced it meanwhile (it carries them on itself).
-- KEYS[1] - the server's last report
-- ARGV[1] - the report as server-roster.lua wrote it
-- ARGV[2] - the same without "l"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
return 0
