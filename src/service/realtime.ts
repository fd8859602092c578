/**
 * The real-time hub as protocols see it: `PresenceService.createFanout` builds one over the
 * service's stores; transports deliver its streams' frames to their sockets.
 */
export type {
  Admission,
  Fanout,
  FanoutOptions,
  RecoverResult,
  ResumeResult,
} from '../realtime/fanout.js'
export type { Sink, Stream } from '../realtime/stream.js'
