-- Forgets a game server's last report once its players' sessions were ended, unless a newer
-- report replaced it meanwhile.
-- KEYS[1] - the server's last report
-- ARGV[1] - the report whose players were ended
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
