import type { BusEvent, ChangeBus } from '../realtime/change-bus.js'

/**
 * The change bus as the service uses it: every publish, whatever its caller (a write, a
 * revocation, a catalogue change), is counted by type before it goes out.
 */
export function observedBus(
  bus: ChangeBus,
  published: ((type: BusEvent['type']) => void) | undefined,
): ChangeBus {
  if (!published) return bus
  const observed: ChangeBus = {
    publish(event, batch) {
      published(event.type)
      return bus.publish(event, batch)
    },
    subscribe: (handler) => bus.subscribe(handler),
    close: () => bus.close(),
  }
  if (bus.publishNow) {
    const publishNow = bus.publishNow.bind(bus)
    observed.publishNow = (event) => {
      published(event.type)
      publishNow(event)
    }
  }
  if (bus.nodes) observed.nodes = () => bus.nodes!()
  if (bus.onResubscribed) observed.onResubscribed = (handler) => bus.onResubscribed!(handler)
  if (bus.listening !== undefined) {
    Object.defineProperty(observed, 'listening', { get: () => bus.listening, enumerable: true })
  }
  return observed
}
