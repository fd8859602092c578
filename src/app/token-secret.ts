import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkTokenSecret } from './config.js'

/** Where a server keeps the secret it generated: `<data dir>/token-secret`. */
export function tokenSecretPath(dataDir: string): string {
  return join(dataDir, 'token-secret')
}

/**
 * The configured secret, else the one a server generated into the data dir, else undefined:
 * how `presenced token` finds the secret of the server it signs for, creating nothing.
 */
export function findTokenSecret(
  configured: string | undefined,
  dataDir: string,
): string | undefined {
  if (configured) return checkTokenSecret(configured, 'PRESENCED_TOKEN_SECRET')
  const path = tokenSecretPath(dataDir)
  let secret: string
  try {
    secret = readFileSync(path, 'utf8').trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    return undefined
  }
  return checkTokenSecret(secret, path)
}

/** The configured secret, else the one generated into the data dir on first use. */
export function resolveTokenSecret(configured: string | undefined, dataDir: string): string {
  const found = findTokenSecret(configured, dataDir)
  if (found !== undefined) return found
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  try {
    // 'wx': if another process created it meanwhile, keep theirs
    writeFileSync(tokenSecretPath(dataDir), secret + '\n', { mode: 0o600, flag: 'wx' })
    return secret
  } catch {
    return readFileSync(tokenSecretPath(dataDir), 'utf8').trim()
  }
}
