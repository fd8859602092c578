import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import {
  ImportLineError,
  lineText,
  lineTooLong,
  MAX_IMPORT_LINE_BYTES,
  parseImportLine,
} from '../protocols/admin/import-lines.js'
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
  try {
    for await (const line of lines(file)) {
      total++
      if (line.trim() === '') continue
      parseImportLine(line)
    }
  } catch (error) {
    if (!(error instanceof ImportLineError)) throw error
    const line = error.line ?? total
    throw new CliError(`${file}:${line}: ${error.message}; nothing was imported`, 2, line)
  }
  progress(`validated ${total} lines in ${seconds(started)} s`)

  // Pass 2: send chunks of whole lines; line numbers in a refusal are relative to the chunk.
  const sending = performance.now()
  let sent = 0
  let chunk: string[] = []
  let chunkBytes = 0
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
    chunkBytes = 0
    const rate = Math.round(sent / ((performance.now() - sending) / 1000))
    progress(
      `imported ${sent}/${total} lines (${((100 * sent) / Math.max(total, 1)).toFixed(1)}%), ${rate} lines/s`,
    )
  }
  for await (const line of lines(file)) {
    // a chunk of long lines is sent early, so that no request nears the server's import limit
    const bytes = Buffer.byteLength(line) + 1
    if (chunk.length > 0 && chunkBytes + bytes > CHUNK_BYTES) await send()
    chunk.push(line)
    chunkBytes += bytes
    if (chunk.length >= chunkLines) await send()
  }
  if (chunk.length > 0) await send()
  progress(`done: ${sent} lines in ${seconds(started)} s`, true)
  return 0
}

/** The most bytes of lines one request sends: 4 of the longest lines, an eighth of the limit. */
const CHUNK_BYTES = 4 * MAX_IMPORT_LINE_BYTES

/**
 * The file's lines, as the server splits a body (linesOf): at `\n`, a trailing `\r` removed. A
 * line longer than MAX_IMPORT_LINE_BYTES throws (ImportLineError with its number) before it is
 * decoded: readline grew one string per line, and a line of 512 MiB ended the process.
 */
async function* lines(file: string): AsyncGenerator<string> {
  let parts: Buffer[] = []
  let size = 0
  let number = 0
  const line = () => {
    number++
    let text = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)
    if (text.at(-1) === 0x0d) text = text.subarray(0, -1)
    if (text.length > MAX_IMPORT_LINE_BYTES) throw lineTooLong(number)
    parts = []
    size = 0
    return lineText(text, number)
  }
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let start = 0
    for (let end = chunk.indexOf(0x0a); end >= 0; end = chunk.indexOf(0x0a, start)) {
      parts.push(chunk.subarray(start, end))
      size += end - start
      start = end + 1
      yield line()
    }
    parts.push(chunk.subarray(start))
    size += chunk.length - start
    // one byte more than the limit may be the `\r` of a `\r\n` still to come
    if (size > MAX_IMPORT_LINE_BYTES + 1) throw lineTooLong(number + 1)
  }
  if (size > 0) yield line()
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1)
}

/** On a terminal, one line rewritten in place; in a log, one line per report. */
function progress(message: string, last = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${message}${last ? '\n' : ''}`)
  else process.stderr.write(`${message}\n`)
}
