import { createHook } from 'node:async_hooks'

/**
 * Keeps `process.nextTick` on V8's fast path for the life of the process (issue 19).
 *
 * Node's nextTick builds its queue entry as `{ [async_id_symbol]: …, [trigger_async_id_symbol]:
 * …, callback, args }`. V8 defines each member after the first computed key through a feedback
 * slot that remembers the object's hidden class (map) at that point, and those maps are held only
 * weakly: when a garbage collection runs while no queue entry is alive, they are collected, the
 * next nextTick makes new ones, the slots see a second map and turn megamorphic, for good. From
 * then on every nextTick defines its last three members in V8's runtime: about 4,300 instructions
 * instead of about 120 (counted with callgrind, bench/read-callgrind.ts), and an HTTP request
 * makes several (the socket write's, the body's end and the response's finish, ...). A loaded
 * server collects garbage between requests all the time, so it ends up there within seconds.
 *
 * One entry kept alive holds its map and, through each map's back pointer, the maps before it:
 * they are never collected, so the slots stay monomorphic. The entry is one nextTick made, taken
 * by an async hook that is on for that one call only, so it has exactly nextTick's shape; it
 * holds nothing but a callback that did nothing. (Not `executionAsyncResource()` inside a tick:
 * calling that once makes Node send every later native callback through its JS trampoline.)
 * Imported first by the app's modules, before most of what the process allocates; a slot already
 * megamorphic stays so (the call is then merely harmless).
 */
let kept: object | undefined

const hook = createHook({
  init(_asyncId, type, _triggerAsyncId, resource) {
    if (type === 'TickObject' && kept === undefined) kept = resource
  },
}).enable()
process.nextTick(() => {})
hook.disable()

/** The entry kept (tests). */
export function keptTickEntry(): object | undefined {
  return kept
}
