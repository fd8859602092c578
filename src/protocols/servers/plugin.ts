import type { FastifyInstance } from 'fastify'
import type { ProtocolContext } from '../context.js'

/** Game servers report their players: /api/v1/servers/{gameId} (docs/reference/servers.md). */
export async function serversProtocol(
  app: FastifyInstance,
  context: ProtocolContext,
): Promise<void> {
  void app
  void context
}
