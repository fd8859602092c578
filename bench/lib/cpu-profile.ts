import { writeFileSync } from 'node:fs'
import inspector from 'node:inspector'

function post(session: inspector.Session, method: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    session.post(method, (error, result) => (error ? reject(error) : resolve(result))),
  )
}

/**
 * Starts sampling this process's CPU (as `node --cpu-prof` does, but only from now on, so a
 * bench can leave its loading out); the returned function stops and writes a .cpuprofile file
 * (Chrome DevTools, or bench/profile-summary.ts).
 */
export async function startCpuProfile(): Promise<(file: string) => Promise<void>> {
  const session = new inspector.Session()
  session.connect()
  await post(session, 'Profiler.enable')
  await post(session, 'Profiler.start')
  return async (file) => {
    const { profile } = (await post(session, 'Profiler.stop')) as { profile: unknown }
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
}

/**
 * Starts V8's sampling heap profiler (one sample every `interval` bytes allocated on average),
 * keeping the samples of objects young and old collections have freed since: what a request
 * allocates, not only what it leaves alive. The returned function stops and writes a
 * .heapprofile file (Chrome DevTools, or bench/heap-profile-summary.ts).
 */
export async function startHeapSampling(interval = 512): Promise<(file: string) => Promise<void>> {
  const session = new inspector.Session()
  session.connect()
  await new Promise<void>((resolve, reject) =>
    session.post(
      'HeapProfiler.startSampling',
      {
        samplingInterval: interval,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      },
      (error) => (error ? reject(error) : resolve()),
    ),
  )
  return async (file) => {
    const { profile } = (await post(session, 'HeapProfiler.stopSampling')) as { profile: unknown }
    writeFileSync(file, JSON.stringify(profile))
    session.disconnect()
  }
}
