import type { FastifyInstance } from 'fastify'
import type { ProtocolContext } from '../context.js'

export async function adminProtocol(app: FastifyInstance, context: ProtocolContext): Promise<void> {
  void app
  void context
}
