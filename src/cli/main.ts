import '../app/tick-shape.js'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from '../app/config.js'
import { findTokenSecret, tokenSecretPath } from '../app/token-secret.js'
import { parseUserId } from '../core/user-id.js'
import { LATEST_NUMERIC_DATE } from '../service/token-claims.js'
import { Tokens } from '../service/tokens.js'
import { echoed } from './admin-http.js'
import { echoWindowPassed } from './client-command.js'
import { runImport } from './import-command.js'
import { runKeys } from './keys-command.js'
import { runWebhooks } from './webhooks-command.js'

const USAGE = `Usage: presenced <command> [options]

Commands:
  serve                 start the server (PORT, HOST and PRESENCED_* from the environment)
  token --user <id>     print an access token signed with the server's secret [--name <name>] [--ttl <seconds>]
  get <ids...>          print users' presence as a table [--json]
  watch <ids...>        show users' presence live until Ctrl-C [--json]
  heartbeat --token <t> keep a user online until Ctrl-C [--place <id>] [--location <text>]
  import <file>         bulk import settings, relationships, places, users (NDJSON) into a running server
  keys create|list|revoke  manage scoped API keys of a running server
  webhooks create|list|get|update|delete|deliveries|replay  manage webhooks of a running server

Options: -h, --help; -v, --version.
Client commands talk to --url (default $PRESENCED_URL or http://127.0.0.1:8080) and take
--timeout <seconds> (give up, exit 1, when the server has not answered a request in full,
body included, by then; watch: when its stream has not opened and sent its first snapshot).
Run 'presenced <command> --help' for a command's options.
Exit codes: 0 ok, 1 server or network error, 2 bad usage or input.`

/** Exit codes: 0 ok, 1 failure at run time, 2 bad usage or input. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'token':
      return token(rest)
    // client commands load only the SDK, never the server's modules
    case 'get':
      return (await import('./get-command.js')).runGet(rest)
    case 'watch':
      return (await import('./watch-command.js')).runWatch(rest)
    case 'heartbeat':
      return (await import('./heartbeat-command.js')).runHeartbeat(rest)
    case 'import':
      return runImport(rest)
    case 'keys':
      return runKeys(rest)
    case 'webhooks':
      return runWebhooks(rest)
    case '--version':
    case '-v':
      console.log(version())
      return 0
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE)
      return command === undefined ? 2 : 0
    default:
      console.error(`presenced: unknown command '${command}'\n\n${USAGE}`)
      return 2
  }
}

/** The package's version; package.json is two levels up from src/cli and from dist/cli alike. */
function version(): string {
  const url = new URL('../../package.json', import.meta.url)
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } } })
  if (values.help) {
    console.log(
      'Usage: presenced serve\n\nStarts presenced; configure it with environment variables (see README).',
    )
    return 0
  }
  const config = loadConfig()
  const { startServer } = await import('../app/server.js')
  await startServer(config)
  return -1
}

async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string', short: 'u' },
      name: { type: 'string' },
      ttl: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(
      'Usage: presenced token --user <id> [--name <display name>] [--ttl <seconds>]\n\n' +
        'Prints an HS256 access token signed with the secret the server uses: PRESENCED_TOKEN_SECRET,\n' +
        'else the token-secret file the server generated in its data dir (PRESENCED_DATA_DIR, default\n' +
        './data of the current folder). Creates no secret: run it where the server runs, or set either.',
    )
    return 0
  }
  const userId = parseUserId(values.user)
  if (!userId) {
    console.error(
      `presenced token: --user must be a positive 64-bit integer, got ${echoed(values.user ?? '')}`,
    )
    return 2
  }
  const ttlSeconds = values.ttl === undefined ? undefined : Number(values.ttl)
  if (ttlSeconds !== undefined && (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)) {
    console.error('presenced token: --ttl must be a positive number of seconds')
    return 2
  }
  // every server refuses a token whose exp is past year 9999 (401): print none rather than that
  if (ttlSeconds !== undefined && Date.now() / 1000 + ttlSeconds > LATEST_NUMERIC_DATE) {
    console.error('presenced token: --ttl must end the token by 9999-12-31T23:59:59Z')
    return 2
  }
  const config = loadConfig()
  const secret = findTokenSecret(config.tokenSecret, config.dataDir)
  if (secret === undefined) {
    // a new secret here would sign tokens that the running server refuses with a bare 401
    console.error(
      `presenced token: no token secret: PRESENCED_TOKEN_SECRET is unset and ${tokenSecretPath(config.dataDir)} does not exist.\n` +
        'A server writes that file into its data dir when it first starts. Run this command in the folder\n' +
        "where the server runs, or point it at the server's data dir with PRESENCED_DATA_DIR=<dir>, or give\n" +
        "the server's secret with PRESENCED_TOKEN_SECRET=<secret>.",
    )
    return 2
  }
  const tokens = new Tokens(secret)
  console.log(await tokens.issue(userId, { name: values.name, ttlSeconds }))
  return 0
}

main(process.argv.slice(2)).then(
  async (code) => {
    if (code >= 0) process.exitCode = code
    await echoWindowPassed()
  },
  (error: unknown) => {
    if (
      error instanceof ConfigError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`presenced: ${(error as Error).message}`)
      process.exitCode = 2
    } else if (
      ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'].includes((error as { code?: string }).code ?? '')
    ) {
      // a listen failure is the operator's to fix, not a crash: say what, not where in the code
      console.error(`presenced: cannot listen: ${(error as Error).message}`)
      process.exitCode = 1
    } else {
      // an operator reads this, not a debugger: the message, no stack trace
      console.error(`presenced: ${error instanceof Error ? error.message : String(error)}`)
      process.exitCode = 1
    }
  },
)
