import { parseArgs } from 'node:util'
import { parseInt64Id } from '../core/user-id.js'
import { isScope, scopes } from '../core/api-key.js'
import { adminRequest, adminTarget, CliError, echoed, runAdminCommand } from './admin-http.js'

const USAGE = `Usage:
  presenced keys create --name <name> --scope <scope> [--scope <scope>...]
                        [--expires <ISO instant | seconds>] [--universe <id>...]
  presenced keys list [--json]
  presenced keys revoke <id>

Scopes: ${scopes.join(', ')}.
create prints the secret (shown once) alone on stdout, its details on stderr.
Common options: --url <server> (default $PRESENCED_URL or http://127.0.0.1:8080),
                --admin-key <key> (default $PRESENCED_ADMIN_KEY),
                --timeout <seconds> (give up, exit 1, when the server has not answered a
                request in full, body included, by then)
Exit codes: 0 ok, 1 server or network error, 2 bad usage or refused input.`

interface KeyView {
  id: string
  name: string
  scopes: string[]
  universes: string[]
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  /** The API key that created it; null for the operator's admin key. */
  issuedBy: string | null
  active: boolean
  secret?: string
}

/** `presenced keys create|list|revoke`: scoped API keys through a running server's admin API. */
export async function runKeys(args: string[]): Promise<number> {
  return runAdminCommand('keys', USAGE, () => keys(args))
}

async function keys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      universe: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      url: { type: 'string' },
      'admin-key': { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  const [action, ...rest] = positionals
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  switch (action) {
    case 'create': {
      if (rest.length > 0) throw new CliError(`unexpected argument ${rest[0]}`, 2)
      const body = createBody(values)
      const target = adminTarget(values)
      const key = (await adminRequest(target, 'POST', '/admin/v1/keys', {
        type: 'application/json',
        data: JSON.stringify(body),
      })) as KeyView
      console.error(
        `created key ${key.id} "${key.name}" with ${key.scopes.join(', ')}` +
          (key.expiresAt ? `, expires ${key.expiresAt}` : ', no expiry') +
          (key.universes.length > 0 ? `, universes ${key.universes.join(', ')}` : '') +
          '\nthe secret below is shown once: store it now (send it as x-api-key)',
      )
      console.log(key.secret)
      return 0
    }
    case 'list': {
      const target = adminTarget(values)
      const { keys: list } = (await adminRequest(target, 'GET', '/admin/v1/keys')) as {
        keys: KeyView[]
      }
      if (values.json) {
        console.log(JSON.stringify(list, null, 2))
        return 0
      }
      if (list.length === 0) {
        console.log('no API keys')
        return 0
      }
      const rows = list.map((k) => [
        k.id,
        k.name,
        k.scopes.join(','),
        k.revokedAt ? 'revoked' : k.active ? 'active' : 'expired',
        k.expiresAt ?? '-',
        k.universes.length > 0 ? k.universes.join(',') : 'any',
        k.issuedBy ?? 'operator',
      ])
      printTable([['ID', 'NAME', 'SCOPES', 'STATUS', 'EXPIRES', 'UNIVERSES', 'ISSUED BY'], ...rows])
      return 0
    }
    case 'revoke': {
      if (rest.length !== 1) throw new CliError('revoke takes exactly one key id', 2)
      const id = rest[0]!
      if (!/^[0-9a-f]{16}$/.test(id)) {
        throw new CliError(`${echoed(id)} is not a key id (16 hex digits; see keys list)`, 2)
      }
      const target = adminTarget(values)
      const key = (await adminRequest(target, 'DELETE', `/admin/v1/keys/${id}`)) as KeyView
      console.log(`revoked key ${key.id} "${key.name}" at ${key.revokedAt}`)
      return 0
    }
    default:
      console.error(
        action === undefined
          ? USAGE
          : `presenced keys: unknown action ${JSON.stringify(action)}\n\n${USAGE}`,
      )
      return 2
  }
}

function createBody(values: {
  name?: string | undefined
  scope?: string[] | undefined
  expires?: string | undefined
  universe?: string[] | undefined
}): Record<string, unknown> {
  if (!values.name) throw new CliError('create needs --name <name>', 2)
  const scopeList = values.scope ?? []
  if (scopeList.length === 0) {
    throw new CliError(`create needs at least one --scope (${scopes.join(', ')})`, 2)
  }
  for (const scope of scopeList) {
    if (!isScope(scope)) {
      throw new CliError(
        `unknown scope ${JSON.stringify(scope)}; scopes are ${scopes.join(', ')}`,
        2,
      )
    }
  }
  const body: Record<string, unknown> = { name: values.name, scopes: [...new Set(scopeList)] }
  if (values.expires !== undefined) {
    if (/^\d+$/.test(values.expires) && Number(values.expires) > 0) {
      body.expiresIn = Number(values.expires)
    } else if (
      /^\d{4}-\d\d-\d\dT/.test(values.expires) &&
      !Number.isNaN(Date.parse(values.expires))
    ) {
      body.expiresAt = new Date(values.expires).toISOString()
    } else {
      throw new CliError(
        `--expires must be an ISO-8601 instant or a number of seconds, got ${JSON.stringify(values.expires)}`,
        2,
      )
    }
  }
  if (values.universe) {
    body.universes = values.universe.map((u) => {
      const id = parseInt64Id(u)
      if (!id)
        throw new CliError(`--universe must be a positive 64-bit integer, got ${echoed(u)}`, 2)
      return id
    })
  }
  return body
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const row of rows)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
}
