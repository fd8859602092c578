const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * A game server instance id (Roblox's JobId) as every protocol takes it: a uuid, in lower case so
 * that one server is one id whichever way a client spelled it; undefined for anything else.
 */
export function canonicalGameId(raw: string): string | undefined {
  return UUID.test(raw) ? raw.toLowerCase() : undefined
}
