/**
 * What a sampling heap profile's requests allocated: bytes per function (self, and with what it
 * calls), biggest first, divided by `requests` when given (bytes per request).
 *
 *   npx tsx bench/heap-profile-summary.ts <file.heapprofile> [top=30] [requests]
 */
import { readFileSync } from 'node:fs'

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: HeapNode[]
}

const [file, topArg, requestsArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: npx tsx bench/heap-profile-summary.ts <file.heapprofile> [top] [requests]')
  process.exit(1)
}
const top = Number(topArg ?? 30)
const requests = Number(requestsArg ?? 1)
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }
const self = new Map<string, number>()
const total = new Map<string, number>()
const name = (node: HeapNode) => {
  const { functionName, url, lineNumber } = node.callFrame
  const path = url.replace(/^file:\/\//, '').replace(/^.*?\/(src|dist|bench|node_modules)\//, '$1/')
  return `${functionName || '(anonymous)'} ${path}:${lineNumber + 1}`
}
function walk(node: HeapNode, above: Set<string>): number {
  const key = name(node)
  let sum = node.selfSize
  self.set(key, (self.get(key) ?? 0) + node.selfSize)
  const seen = new Set(above).add(key)
  for (const child of node.children) sum += walk(child, seen)
  // a recursive function's bytes counted once in its total
  if (!above.has(key)) total.set(key, (total.get(key) ?? 0) + sum)
  return sum
}
const all = walk(head, new Set())
const per = (bytes: number) => (bytes / requests).toFixed(requests > 1 ? 1 : 0).padStart(12)
console.log(`${per(all)}  all sampled${requests > 1 ? ' (bytes per request)' : ' (bytes)'}`)
console.log('self:')
for (const [key, bytes] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${per(bytes)}  ${key}`)
console.log('total (self and callees):')
for (const [key, bytes] of [...total].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${per(bytes)}  ${key}`)
