import { parseArgs } from 'node:util'
import { createClient } from '@presenced/client'
import {
  TIMEOUT_HELP,
  TIMEOUT_OPTION,
  UsageError,
  commandClientOptions,
  presenceJson,
  runClientCommand,
  serverUrl,
  stateName,
  table,
  tokenOf,
  whenOf,
  whereOf,
} from './client-command.js'

const USAGE = `Usage: presenced get <user ids...> [--json] [--url <server>] [--token <token>]
                     [--timeout <seconds>]

Prints the presence of users as a table (or JSON with --json), in the order given.
Ids are 64-bit integers; any number of them (sent in batches of 50).

Options:
  --json           one JSON array, ids as strings, dates as ISO-8601
  --url <server>   default $PRESENCED_URL or http://127.0.0.1:8080
  --token <token>  see as this user (friends-only details, your own state while invisible); default $PRESENCED_TOKEN
${TIMEOUT_HELP}
  -h, --help       this help

Exit codes: 0 ok, 1 server or network error, 2 bad usage or input.`

/** `presenced get`: one lookup through the SDK. */
export function runGet(args: string[]): Promise<number> {
  return runClientCommand('get', async () => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        url: { type: 'string' },
        token: { type: 'string' },
        ...TIMEOUT_OPTION,
        help: { type: 'boolean', short: 'h' },
      },
    })
    if (values.help) {
      console.log(USAGE)
      return 0
    }
    const ids = positionals.flatMap((p) => p.split(',')).filter((p) => p !== '')
    if (ids.length === 0) throw new UsageError(`give at least one user id\n\n${USAGE}`)
    const { fetch, retry } = commandClientOptions(values.timeout)
    const client = createClient({
      baseUrl: serverUrl(values.url),
      token: tokenOf(values.token),
      fetch,
      retry,
      // --timeout bounds the exchange (fetch above); without it the command waits, as it says
      timeoutMs: false,
    })
    const presences = await client.getUserPresences(ids)
    if (values.json) {
      console.log(JSON.stringify(presences.map(presenceJson), null, 2))
      return 0
    }
    console.log(
      table(
        ['USER', 'STATE', 'WHERE', 'UNIVERSE', 'GAME', 'LAST ONLINE'],
        presences.map((p) => [
          p.userId,
          stateName(p.type),
          whereOf(p),
          p.universe?.id ?? '',
          p.job?.id ?? '',
          whenOf(p.lastOnline),
        ]),
      ),
    )
    return 0
  })
}
