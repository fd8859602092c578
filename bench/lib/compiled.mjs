/**
 * `--import` after tsx: presenced's sources (`<checkout>/src/**.ts`) are loaded from that
 * checkout's tsc build (`dist/**.js`), as `npm start` runs them. tsx compiles with esbuild's
 * keepNames, which wraps every closure made in a `__name` call (an Object.defineProperty, ~3.9k
 * instructions under callgrind, issue 19); tsc's output has none, so benches measured through
 * tsx understated the service as shipped. Bench files themselves still run through tsx.
 * PRESENCED_BENCH_SOURCE=1 runs the sources through tsx instead. The build must be current
 * (processes.ts builds each checkout it starts first).
 */
import { register } from 'node:module'
import process from 'node:process'

if (process.env.PRESENCED_BENCH_SOURCE !== '1') register('./compiled-hooks.mjs', import.meta.url)
