/** GET /health (readiness: 200 once enough workers are ready) and GET /health/live (liveness). */
import type { FastifyInstance } from 'fastify';
import { healthRouteSchema, liveRouteSchema } from '../api-schemas.js';
import type { ServerPool } from '../server-pool.js';

export function registerHealthRoutes(app: FastifyInstance, pool: ServerPool, opts: { testDouble: boolean }): void {
  app.get('/health', { schema: healthRouteSchema }, async (_request, reply) => {
    const body = pool.health();
    reply.code(pool.isAvailable() ? 200 : 503);
    return opts.testDouble
      ? { ...body, warning: 'POSE_MODEL=synthetic is a test double: its keypoints are not real poses' }
      : body;
  });

  app.get('/health/live', { schema: liveRouteSchema }, async () => ({ status: 'live' }));
}
