import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { ImportLineError, parseImportLine } from '../protocols/admin/import-lines.js'
import { adminRequest, adminTarget, CliError, runAdminCommand } from './admin-http.js'

const USAGE = `Usage: presenced import <file.ndjson> [--url <server>] [--admin-key <key>] [--chunk <lines>]
                        [--timeout <seconds>]

Imports settings, friendships, blocks, places, titles and users from NDJSON, one JSON object per
line, e.g.
  {"type":"settings","userId":"1","visibility":"friends","invisible":false}
  {"type":"friends","a":"1","b":"2"}
  {"type":"block","blocker":"1","blocked":"2"}
The whole file is validated first (nothing is sent if a line is bad), then sent in chunks of
--chunk lines (default 50000) to POST /admin/v1/import, with progress on stderr.
Options: --url (default $PRESENCED_URL or http://127.0.0.1:8080),
         --admin-key (default $PRESENCED_ADMIN_KEY),
         --timeout (give up, exit 1, when the server has not answered a chunk in full within
         that many s).
Exit codes: 0 ok, 1 server or network error, 2 bad usage or a refused line.`

/** `presenced import <file>`: bulk import through a running server, all lines checked first. */
export async function runImport(args: string[]): Promise<number> {
  return runAdminCommand('import', USAGE, () => importFile(args))
}

async function importFile(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      'admin-key': { type: 'string' },
      timeout: { type: 'string' },
      chunk: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (positionals.length !== 1) {
    console.error(`presenced import: name one file to import\n\n${USAGE}`)
    return 2
  }
  const file = positionals[0]!
  const chunkLines = values.chunk === undefined ? 50_000 : Number(values.chunk)
  if (!Number.isInteger(chunkLines) || chunkLines < 1 || chunkLines > 1_000_000) {
    throw new CliError('--chunk must be a whole number of lines from 1 to 1000000', 2)
  }
  const target = adminTarget(values)
  try {
    if (!(await stat(file)).isFile()) throw new CliError(`${file} is not a file`, 2)
  } catch (error) {
    if (error instanceof CliError) throw error
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`, 2)
  }

  // Pass 1: validate locally with the server's own rules, so that a bad line on line 900,000
  // refuses the import before the first chunk is sent.
  const started = performance.now()
  let total = 0
  for await (const line of lines(file)) {
    total++
    if (line.trim() === '') continue
    try {
      parseImportLine(line)
    } catch (error) {
      if (!(error instanceof ImportLineError)) throw error
      throw new CliError(`${file}:${total}: ${error.message}; nothing was imported`, 2, total)
    }
  }
  progress(`validated ${total} lines in ${seconds(started)} s`)

  // Pass 2: send chunks of whole lines; line numbers in a refusal are relative to the chunk.
  const sending = performance.now()
  let sent = 0
  let chunk: string[] = []
  const send = async () => {
    try {
      await adminRequest(target, 'POST', '/admin/v1/import', {
        type: 'application/x-ndjson',
        data: chunk.join('\n') + '\n',
      })
    } catch (error) {
      if (error instanceof CliError && error.line !== undefined) {
        const line = sent + error.line
        throw new CliError(
          `${file}:${line}: refused by the server (${error.message}); lines before ${sent + 1} were imported`,
          error.exitCode,
          line,
        )
      }
      if (error instanceof CliError && sent > 0) {
        throw new CliError(
          `${error.message}; lines 1 to ${sent} were imported, resume from line ${sent + 1}`,
          error.exitCode,
        )
      }
      throw error
    }
    sent += chunk.length
    chunk = []
    const rate = Math.round(sent / ((performance.now() - sending) / 1000))
    progress(
      `imported ${sent}/${total} lines (${((100 * sent) / Math.max(total, 1)).toFixed(1)}%), ${rate} lines/s`,
    )
  }
  for await (const line of lines(file)) {
    chunk.push(line)
    if (chunk.length >= chunkLines) await send()
  }
  if (chunk.length > 0) await send()
  progress(`done: ${sent} lines in ${seconds(started)} s`, true)
  return 0
}

function lines(file: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(file), crlfDelay: Infinity })
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1)
}

/** On a terminal, one line rewritten in place; in a log, one line per report. */
function progress(message: string, last = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${message}${last ? '\n' : ''}`)
  else process.stderr.write(`${message}\n`)
}
