/**
 * Compile-time check (npm run typecheck): what the server sends on the native wire is exactly
 * the type the SDK decodes. The wire types are defined once, in sdk/src/wire.ts; the server's
 * view is built from the core's types and must stay equal to them (the server's compiled build
 * cannot import the SDK's sources, so it is held to them here).
 */
import type {
  NativePresence as ServerPresence,
  NativeSession as ServerSession,
} from '../../src/protocols/native/view.js'
import type { SseBody as ServerSseBody } from '../../src/protocols/native/sse.js'
import type {
  NativePresence as WirePresence,
  NativeSession as WireSession,
  NativeSseRequest as WireSseRequest,
} from '../../sdk/src/wire.js'

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false

export const sessionsAgree: Equal<ServerSession, WireSession> = true
export const presencesAgree: Equal<ServerPresence, WirePresence> = true
export const sseRequestsAgree: Equal<ServerSseBody, WireSseRequest> = true
