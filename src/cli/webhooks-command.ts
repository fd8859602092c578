import { parseArgs } from 'node:util'
import {
  adminRequest,
  adminTarget,
  CliError,
  echoed,
  runAdminCommand,
  type AdminTarget,
} from './admin-http.js'

const USAGE = `Usage:
  presenced webhooks create <endpoint url> --key <API key id> [--event <type>...]
                            [--universe <id>...] [--title <id>...] [--user <id>...]
                            [--secret <secret>] [--disabled] [--description <text>]
  presenced webhooks list [--json]
  presenced webhooks get <id> [--json]
  presenced webhooks update <id> [--endpoint <url>] [--event <type>...]
                            [--universe <id>... --title <id>... --user <id>... | --no-filter]
                            [--enable | --disable] [--secret <secret> | --rotate-secret]
                            [--description <text>]
  presenced webhooks delete <id>
  presenced webhooks deliveries <id> [--state parked|queued] [--limit <n>] [--json]
  presenced webhooks replay <id> [--event-id <id>...]

Event types: online, update, offline (default: all). The key's scope decides what the endpoint
sees (presence:read: privacy applies; presence:read:private: everything).
create prints the secret (shown once) alone on stdout, its details on stderr; so does
update --rotate-secret. update with any of --universe/--title/--user replaces the whole filter.
replay without --event-id replays every parked delivery.
Common options: --url <server> (default $PRESENCED_URL or http://127.0.0.1:8080),
                --admin-key <key> (default $PRESENCED_ADMIN_KEY),
                --timeout <seconds> (give up, exit 1, when the server has not answered a
                request in full, body included, by then)
Exit codes: 0 ok, 1 server or network error, 2 bad usage or refused input.`

interface WebhookView {
  id: string
  url: string
  keyId: string
  scope: string | null
  events: string[]
  filter: { universes: string[]; titles: string[]; users: string[] }
  enabled: boolean
  description: string
  createdAt: string
  updatedAt: string
  queued?: number
  parked?: number
  delivering?: boolean
  secret?: string
}

interface DeliveryView {
  eventId: string
  type: string
  userId: string
  state: string
  attempts: number
  lastError: string | null
  lastAttemptAt: string | null
  parkedAt: string | null
  createdAt: string
}

type Values = {
  key?: string | undefined
  event?: string[] | undefined
  universe?: string[] | undefined
  title?: string[] | undefined
  user?: string[] | undefined
  secret?: string | undefined
  disabled?: boolean | undefined
  disable?: boolean | undefined
  enable?: boolean | undefined
  description?: string | undefined
  endpoint?: string | undefined
  'no-filter'?: boolean | undefined
  'rotate-secret'?: boolean | undefined
  state?: string | undefined
  limit?: string | undefined
  'event-id'?: string[] | undefined
}

/** `presenced webhooks …`: webhook endpoints of a running server, through its admin API. */
export async function runWebhooks(args: string[]): Promise<number> {
  return runAdminCommand('webhooks', USAGE, () => webhooks(args))
}

async function webhooks(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      key: { type: 'string' },
      event: { type: 'string', multiple: true },
      universe: { type: 'string', multiple: true },
      title: { type: 'string', multiple: true },
      user: { type: 'string', multiple: true },
      secret: { type: 'string' },
      disabled: { type: 'boolean' },
      enable: { type: 'boolean' },
      disable: { type: 'boolean' },
      description: { type: 'string' },
      endpoint: { type: 'string' },
      'no-filter': { type: 'boolean' },
      'rotate-secret': { type: 'boolean' },
      state: { type: 'string' },
      limit: { type: 'string' },
      'event-id': { type: 'string', multiple: true },
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
  const target = () =>
    adminTarget({
      url: values.url,
      'admin-key': values['admin-key'],
      timeout: values.timeout,
    })
  switch (action) {
    case 'create': {
      if (rest.length !== 1) throw new CliError('create takes exactly one endpoint URL', 2)
      if (!values.key) throw new CliError('create needs --key <API key id> (see keys list)', 2)
      const body: Record<string, unknown> = { url: rest[0], keyId: values.key }
      if (values.event) body.events = values.event
      const filter = filterOf(values)
      if (filter) body.filter = filter
      if (values.secret !== undefined) body.secret = values.secret
      if (values.disabled) body.enabled = false
      if (values.description !== undefined) body.description = values.description
      const hook = (await send(target(), 'POST', '/admin/v1/webhooks', body)) as WebhookView
      console.error(
        `created webhook ${hook.id} → ${hook.url} (${hook.events.join(', ')}; ${hook.scope ?? 'no read scope'}${hook.enabled ? '' : '; disabled'})` +
          (values.secret === undefined
            ? '\nthe secret below is shown once: store it now (it verifies x-presenced-signature)'
            : ''),
      )
      if (values.secret === undefined) console.log(hook.secret)
      return 0
    }
    case 'list': {
      if (rest.length > 0) throw new CliError(`unexpected argument ${rest[0]}`, 2)
      const { webhooks: list } = (await adminRequest(target(), 'GET', '/admin/v1/webhooks')) as {
        webhooks: WebhookView[]
      }
      if (values.json) {
        console.log(JSON.stringify(list, null, 2))
        return 0
      }
      if (list.length === 0) {
        console.log('no webhooks')
        return 0
      }
      printTable([
        ['ID', 'URL', 'EVENTS', 'SCOPE', 'STATUS', 'FILTER'],
        ...list.map((w) => [
          w.id,
          w.url,
          w.events.join(','),
          w.scope ?? 'none (key gone)',
          w.enabled ? 'enabled' : 'disabled',
          describeFilter(w.filter),
        ]),
      ])
      return 0
    }
    case 'get': {
      const id = oneId(rest, 'get')
      const hook = (await adminRequest(target(), 'GET', `/admin/v1/webhooks/${id}`)) as WebhookView
      if (values.json) {
        console.log(JSON.stringify(hook, null, 2))
        return 0
      }
      printTable([
        ['id', hook.id],
        ['url', hook.url],
        [
          'key',
          `${hook.keyId} (${hook.scope ?? 'gone, revoked or expired: nothing is delivered'})`,
        ],
        ['events', hook.events.join(', ')],
        ['filter', describeFilter(hook.filter)],
        ['status', hook.enabled ? 'enabled' : 'disabled'],
        ['description', hook.description || '-'],
        ['queued', String(hook.queued ?? 0)],
        ['parked', String(hook.parked ?? 0)],
        ['created', hook.createdAt],
        ['updated', hook.updatedAt],
      ])
      return 0
    }
    case 'update': {
      const id = oneId(rest, 'update')
      const body = updateBody(values)
      const hook = (await send(target(), 'PATCH', `/admin/v1/webhooks/${id}`, body)) as WebhookView
      console.error(
        `updated webhook ${hook.id} → ${hook.url} (${hook.events.join(', ')}${hook.enabled ? '' : '; disabled'})`,
      )
      if (hook.secret !== undefined) {
        console.error('the new secret below is shown once: store it now')
        console.log(hook.secret)
      }
      return 0
    }
    case 'delete': {
      const id = oneId(rest, 'delete')
      await adminRequest(target(), 'DELETE', `/admin/v1/webhooks/${id}`)
      console.log(`deleted webhook ${id} with its queued and parked deliveries`)
      return 0
    }
    case 'deliveries': {
      const id = oneId(rest, 'deliveries')
      const state = values.state ?? 'parked'
      if (state !== 'parked' && state !== 'queued') {
        throw new CliError(`--state must be parked or queued, got ${JSON.stringify(state)}`, 2)
      }
      const limit = values.limit ?? '100'
      if (!/^[1-9][0-9]{0,3}$/.test(limit) || Number(limit) > 1000) {
        throw new CliError(
          `--limit must be an integer from 1 to 1000, got ${JSON.stringify(limit)}`,
          2,
        )
      }
      const { deliveries } = (await adminRequest(
        target(),
        'GET',
        `/admin/v1/webhooks/${id}/deliveries?state=${state}&limit=${limit}`,
      )) as { deliveries: DeliveryView[] }
      if (values.json) {
        console.log(JSON.stringify(deliveries, null, 2))
        return 0
      }
      if (deliveries.length === 0) {
        console.log(`no ${state} deliveries`)
        return 0
      }
      printTable([
        ['EVENT', 'TYPE', 'USER', 'TRIES', 'LAST ERROR', state === 'parked' ? 'PARKED' : 'CREATED'],
        ...deliveries.map((d) => [
          d.eventId,
          d.type,
          d.userId,
          String(d.attempts),
          d.lastError ?? '-',
          (state === 'parked' ? d.parkedAt : d.createdAt) ?? '-',
        ]),
      ])
      return 0
    }
    case 'replay': {
      const id = oneId(rest, 'replay')
      const eventIds = values['event-id']
      const { replayed } = (await send(
        target(),
        'POST',
        `/admin/v1/webhooks/${id}/deliveries/replay`,
        eventIds ? { eventIds } : {},
      )) as { replayed: number }
      console.log(`replayed ${replayed} parked ${replayed === 1 ? 'delivery' : 'deliveries'}`)
      return 0
    }
    default:
      console.error(
        action === undefined
          ? USAGE
          : `presenced webhooks: unknown action ${JSON.stringify(action)}\n\n${USAGE}`,
      )
      return 2
  }
}

function send(target: AdminTarget, method: string, path: string, body: unknown) {
  return adminRequest(target, method, path, {
    type: 'application/json',
    data: JSON.stringify(body),
  })
}

function oneId(rest: string[], action: string): string {
  if (rest.length !== 1) throw new CliError(`${action} takes exactly one webhook id`, 2)
  const id = rest[0]!
  if (!/^[0-9a-f]{16}$/.test(id)) {
    throw new CliError(`${echoed(id)} is not a webhook id (16 hex digits; see webhooks list)`, 2)
  }
  return id
}

function filterOf(values: Values): Record<string, string[]> | undefined {
  if (!values.universe && !values.title && !values.user) return undefined
  return {
    universes: values.universe ?? [],
    titles: values.title ?? [],
    users: values.user ?? [],
  }
}

function updateBody(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  if (values.key !== undefined) {
    throw new CliError('a webhook stays bound to its key: create a new webhook for another key', 2)
  }
  if (values.endpoint !== undefined) body.url = values.endpoint
  if (values.event) body.events = values.event
  const filter = filterOf(values)
  if (filter && values['no-filter']) throw new CliError('give filters or --no-filter, not both', 2)
  if (filter) body.filter = filter
  if (values['no-filter']) body.filter = { universes: [], titles: [], users: [] }
  if (values.enable && values.disable) throw new CliError('give --enable or --disable, not both', 2)
  if (values.enable) body.enabled = true
  if (values.disable) body.enabled = false
  if (values.secret !== undefined) body.secret = values.secret
  if (values['rotate-secret']) body.rotateSecret = true
  if (values.description !== undefined) body.description = values.description
  if (Object.keys(body).length === 0) throw new CliError('update needs at least one change', 2)
  return body
}

function describeFilter(filter: WebhookView['filter']): string {
  const parts = [
    filter.universes.length > 0 && `universes ${filter.universes.join(',')}`,
    filter.titles.length > 0 && `titles ${filter.titles.join(',')}`,
    filter.users.length > 0 &&
      `users ${filter.users.length > 5 ? `${filter.users.length} ids` : filter.users.join(',')}`,
  ].filter((part): part is string => typeof part === 'string')
  return parts.length > 0 ? parts.join('; ') : 'all'
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const row of rows) {
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
  }
}
