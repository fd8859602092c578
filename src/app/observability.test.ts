import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Registry } from 'prom-client'
import { Metrics } from './observability.js'

/** The series lines of one metric in a registry's text, in their order. */
async function seriesOf(registry: Registry, name: string): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((line) => line.startsWith(`${name}{`))
}

test('pending counts show what prom-client counters show: runs, returns, values first seen between scrapes', async () => {
  const metrics = new Metrics()
  const oracleRegistry = new Registry()
  const oracle = new Counter({
    name: 'presenced_heartbeats_total',
    help: 'oracle',
    labelNames: ['source'],
    registers: [oracleRegistry],
  })
  const beat = (source: 'app' | 'title' | 'server', count: number) => {
    metrics.observer.heartbeats?.(source, count)
    oracle.inc({ source }, count)
  }
  const compare = async () =>
    assert.deepEqual(
      await seriesOf(metrics.registry, 'presenced_heartbeats_total'),
      await seriesOf(oracleRegistry, 'presenced_heartbeats_total'),
    )
  // a run of one value, another, back to the first: each value in the order first seen
  for (let i = 0; i < 5; i++) beat('title', 1)
  beat('app', 2)
  beat('app', 1)
  beat('title', 3)
  await compare()
  // read twice with nothing in between, then a value first seen after a read, and a zero
  await compare()
  beat('server', 0)
  beat('app', 4)
  beat('server', 1)
  await compare()
  const lines = await seriesOf(metrics.registry, 'presenced_heartbeats_total')
  assert.deepEqual(lines, [
    'presenced_heartbeats_total{source="title"} 8',
    'presenced_heartbeats_total{source="app"} 7',
    'presenced_heartbeats_total{source="server"} 1',
  ])
})
