// What the docs-examples tests share: reading examples out of the markdown (sections, fenced
// blocks with their lines, shell steps with the output the doc shows), comparing real output
// with the output a doc shows, and running shell examples in the repository as a user would.
//
// The comparison's convention, for everything a doc shows (JSON and text alike):
// - an ISO-8601 time (`2026-01-01T00:00:00.000Z`, or Xbox's `2026-01-01T00:00:00.0000000`)
//   matches any time of the same spelling;
// - a string with `…` matches any string that begins with what comes before the `…`
//   (`"pk_…"`, `"6d7c…"`; `"…"` alone: any string), and `{…}` any object;
// - an id the server generates matches any id of its form: 16 lowercase hex digits (API keys,
//   webhooks) and `evt_` + 32 (webhook events);
// - everything else is compared exactly, objects' keys in their order.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { spawnServer, type ServerProcess } from './spawn-server.js'

export const ROOT = resolve(import.meta.dirname, '../..')
export const doc = (path: string) => readFileSync(join(ROOT, path), 'utf8')

/** The text under a heading (`## Try it in a minute`), up to the next heading of its level or above. */
export function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n')
  const start = lines.findIndex((line) => line === heading)
  assert.ok(start >= 0, `heading ${heading} not found`)
  const level = heading.indexOf(' ')
  let fenced = false
  const end = lines.findIndex((line, i) => {
    if (line.startsWith('```')) fenced = !fenced
    return i > start && !fenced && /^#+ /.test(line) && line.indexOf(' ') <= level
  })
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** The fenced code blocks of a text written in `lang`. */
export function codeBlocks(text: string, lang: string): string[] {
  return fences(text)
    .filter((block) => block.lang === lang)
    .map((block) => block.text)
}

/** A fenced code block of a doc, with the line of its opening fence (1-based). */
export interface Fence {
  lang: string
  text: string
  line: number
}

/** Every fenced code block of a text, in order. */
export function fences(text: string): Fence[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({
    lang: match[1]!,
    text: match[2]!,
    line: text.slice(0, match.index).split('\n').length,
  }))
}

export interface Step {
  /** The command, its continuation lines joined. */
  command: string
  /** The comment lines right after it, without `# `: what the doc shows it prints. */
  shown: string[]
}

/** A shell block as commands, each with the comment lines that follow it. */
export function steps(block: string): Step[] {
  const out: Step[] = []
  let pending = ''
  for (const line of block.split('\n')) {
    if (pending === '' && line.startsWith('#')) {
      out.at(-1)?.shown.push(line.replace(/^# ?/, ''))
    } else if (line.endsWith('\\')) {
      pending += line.slice(0, -1)
    } else if (pending !== '' || line.trim() !== '') {
      out.push({ command: pending + line, shown: [] })
      pending = ''
    }
  }
  return out
}

/** The step whose command contains `text`. */
export function step(all: Step[], text: string): Step {
  const found = all.find((s) => s.command.includes(text))
  assert.ok(found, `no command with ${text}`)
  return found
}

export const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/
/** Xbox's `timestamp` spelling: seven fraction digits, no zone letter. */
const XBOX_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$/
/** Ids the server makes up: API keys' and webhooks' (16 hex digits), webhook events'. */
const GENERATED_IDS = [/^[0-9a-f]{16}$/, /^evt_[0-9a-f]{32}$/]

/**
 * Whether `actual` has the shape the doc shows: the same keys in the same order, the same values,
 * except for times, `…` and generated ids (the convention at the top of this file). With
 * `values: false`, only the keys and the kinds of values are compared (counts, clock readings and
 * pseudonyms that depend on everything else the server saw).
 */
export function assertShaped(
  actual: unknown,
  shown: unknown,
  path = '$',
  options: { values?: boolean } = {},
): void {
  const pattern =
    typeof shown === 'string'
      ? [ISO, XBOX_TIME, ...GENERATED_IDS].find((form) => form.test(shown))
      : undefined
  if (pattern) {
    assert.match(String(actual), pattern, `${path}: ${shown} stands for any value of its form`)
  } else if (shown === '{…}') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: an object`)
  } else if (typeof shown === 'string' && options.values === false) {
    assert.equal(typeof actual, 'string', `${path}: a string`)
  } else if (typeof shown === 'string' && shown.includes('…')) {
    assert.equal(typeof actual, 'string', path)
    const prefix = shown.slice(0, shown.indexOf('…'))
    assert.ok((actual as string).startsWith(prefix), `${path}: ${String(actual)} begins ${prefix}`)
  } else if (Array.isArray(shown)) {
    assert.ok(Array.isArray(actual), `${path}: an array`)
    if (options.values === false) {
      if (shown.length > 0) assert.ok(actual.length > 0, `${path}: not empty`)
      if (shown.length > 0 && actual.length > 0)
        assertShaped(actual[0], shown[0], `${path}[0]`, options)
      return
    }
    assert.equal(actual.length, shown.length, `${path}: length`)
    shown.forEach((item, i) => assertShaped(actual[i], item, `${path}[${i}]`, options))
  } else if (shown !== null && typeof shown === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: an object`)
    assert.deepEqual(Object.keys(actual), Object.keys(shown), `${path}: keys`)
    for (const [key, value] of Object.entries(shown)) {
      assertShaped((actual as Record<string, unknown>)[key], value, `${path}.${key}`, options)
    }
  } else if (options.values === false) {
    assert.equal(typeof actual, typeof shown, `${path}: a ${typeof shown}`)
  } else {
    assert.deepEqual(actual, shown, path)
  }
}

/** The JSON a doc shows in comment lines, a trailing `   (remark)` left out. */
export function shownJson(shown: string[]): unknown {
  return JSON.parse(shown.map((line) => line.trim().replace(/\s{2,}\(.*\)$/, '')).join(''))
}

/**
 * JSON as a doc writes it or a server answers it, read without losing digits: integers of 16
 * digits or more (int64 ids) are read as strings on both sides, and a doc's `{…}` and bare `…`
 * as the strings the comparison takes them for.
 */
export function looseJson(text: string): unknown {
  return JSON.parse(
    text
      .replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"')
      .replace(/([:[,]\s*)\{…\}/g, '$1"{…}"')
      .replace(/([:[,]\s*)…(?=\s*[,\]}])/g, '$1"…"'),
  )
}

/** Times and clock readings replaced by placeholders of their own width. */
export const untimed = (text: string) =>
  text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z/g, (time) => 'T'.repeat(time.length))
    .replace(/^\d\d:\d\d:\d\d/gm, 'hh:mm:ss')

/** Runs `check`, naming `where` (`docs/reference/roblox.md:16`) in the message of its failure. */
export async function at<T>(where: string, check: () => T | Promise<T>): Promise<T> {
  try {
    return await check()
  } catch (error) {
    if (error instanceof Error) error.message = `${where}: ${error.message}`
    throw error
  }
}

export interface Shell {
  code: number | null
  stdout: string
  stderr: string
}

/** `npx presenced` through the package's bin, without npm's second of starting up, but once. */
export const NPX_SHIM =
  'npx() { if [ "$1" = presenced ]; then shift; node bin/presenced.js "$@"; else command npx "$@"; fi; }'
/** `presenced` as the docs write it once installed: the package's bin. */
export const PRESENCED_SHIM = `presenced() { node "${ROOT}/bin/presenced.js" "$@"; }`

/**
 * A shell for a server at `url` with data dir `dataDir`: `bash(script)` runs `script` in bash in
 * the repository, with the docs' port replaced by the server's, and job control on as in a
 * terminal (`kill -INT %1` interrupts a background command as Ctrl-C would).
 */
export function shellFor(server: () => { url: string; dataDir: string }) {
  return function bash(
    script: string,
    env: Record<string, string> = {},
    options: { shim?: boolean; cwd?: string } = {},
  ): Promise<Shell> {
    const { url, dataDir } = server()
    const hostPort = new URL(url).host
    const adjusted = script
      .replaceAll('localhost:8080', hostPort)
      .replaceAll('127.0.0.1:8080', hostPort)
    const shims = options.shim === false ? '' : `${NPX_SHIM}\n${PRESENCED_SHIM}`
    const child = spawn('bash', ['-c', `set -m\n${shims}\n${adjusted}`], {
      cwd: options.cwd ?? ROOT,
      detached: true,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PRESENCED_DATA_DIR: dataDir,
        PRESENCED_URL: url,
        ...env,
      },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    // a generous bound, only so that a hung example fails with what it printed
    const timer = setTimeout(() => {
      stderr += '\n(killed after 60 s)'
      process.kill(-child.pid!, 'SIGKILL')
    }, 60_000)
    return new Promise((done, fail) => {
      child.on('error', fail)
      child.on('close', (code) => {
        clearTimeout(timer)
        done({ code, stdout, stderr })
      })
    })
  }
}

/**
 * A `presenced serve` that lives for a whole test file: the clean-ups the spawn registers go to
 * `cleanups`, for the file's `after` hook to run.
 */
export function spawnForFile(
  env: Record<string, string>,
  cleanups: Array<() => void | Promise<void>>,
): Promise<ServerProcess> {
  const context = {
    after: (fn: () => void) => void cleanups.push(fn),
  } as unknown as Parameters<typeof spawnServer>[0]
  return spawnServer(context, env)
}
