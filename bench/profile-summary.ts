/**
 * Where a CPU profile's time went: the functions with the most samples of their own (self),
 * per function the samples spent in it or below it (inclusive), per source file the same
 * (total), and per folder the samples of its own functions (self; Node's own modules as one,
 * natives by name), idle left out. With `µs`, the CPU per request the bench printed for the
 * profiled server, each share is also given in µs a request (so two servers' profiles compare).
 *
 *   npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25] [µs]
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
}

const [file, topArg, usArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top] [µs]')
  process.exit(1)
}
const top = Number(topArg ?? 25)
const usPerRequest = usArg === undefined ? undefined : Number(usArg)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes)
  for (const child of node.children ?? []) parent.set(child, node.id)

const where = (node: ProfileNode) => {
  const { url, lineNumber } = node.callFrame
  const path = url.replace(/^file:\/\//, '').replace(/^.*?\/(src|bench|node_modules)\//, '$1/')
  // tsx's transpiled modules report line 0 for every function: no line then
  return path && lineNumber > 0 ? `${path}:${lineNumber + 1}` : path
}
const fileOf = (node: ProfileNode) =>
  where(node).replace(/:\d+$/, '') || `(${node.callFrame.functionName || 'native'})`

/** A frame's folder: its file's, Node's own modules as one, a native (no file) by its name. */
const folderOf = (node: ProfileNode) => {
  const { url, functionName } = node.callFrame
  if (url.startsWith('node:')) return 'node:*'
  if (!url) return `(${functionName || 'native'})`
  const path = url.replace(/^file:\/\//, '').replace(/^.*?\/(src|dist|bench|node_modules)\//, '$1/')
  return path.slice(0, Math.max(path.lastIndexOf('/'), 0)) || path
}

const self = new Map<string, number>()
const selfByFolder = new Map<string, number>()
const inclusive = new Map<string, number>()
const totalByFile = new Map<string, number>()
let busy = 0
for (const sample of profile.samples) {
  const node = byId.get(sample)!
  if (node.callFrame.functionName === '(idle)') continue
  busy++
  const name = `${node.callFrame.functionName || '(anonymous)'} ${where(node)}`.trim()
  self.set(name, (self.get(name) ?? 0) + 1)
  const folder = folderOf(node)
  selfByFolder.set(folder, (selfByFolder.get(folder) ?? 0) + 1)
  // a file or function counts once per sample, however deep it recurs
  const files = new Set<string>()
  const functions = new Set<string>()
  for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)!
    files.add(fileOf(frame))
    functions.add(`${frame.callFrame.functionName || '(anonymous)'} ${where(frame)}`.trim())
  }
  files.delete('((root))')
  functions.delete('(root)')
  for (const f of files) totalByFile.set(f, (totalByFile.get(f) ?? 0) + 1)
  for (const f of functions) inclusive.set(f, (inclusive.get(f) ?? 0) + 1)
}

const percent = (n: number) =>
  `${((n / busy) * 100).toFixed(1).padStart(5)} %` +
  (usPerRequest === undefined ? '' : ` ${((n / busy) * usPerRequest).toFixed(1).padStart(6)} µs`)
console.log(`${busy} busy samples (idle left out)\n\nself time, top ${top}:`)
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${percent(n)}  ${name}`)
}
console.log(`\ninclusive time by function (the function or what it called), top ${top}:`)
for (const [name, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${percent(n)}  ${name}`)
}
console.log(`\ntotal time by file (the file or what it called), top ${top}:`)
for (const [name, n] of [...totalByFile].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${percent(n)}  ${name}`)
}
console.log(`\nself time by folder (its own functions' samples), top ${top}:`)
for (const [name, n] of [...selfByFolder].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${percent(n)}  ${name}`)
}
