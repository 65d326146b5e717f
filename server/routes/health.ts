/** GET /health (readiness: 200 once enough workers are ready) and GET /health/live (liveness). */
import type { FastifyInstance } from 'fastify';
import type { PosePool } from '../../workers/index.js';
import { healthRouteSchema, liveRouteSchema } from '../api-schemas.js';
import type { JobQueue } from '../jobs/job-queue.js';

/** The routes that keep answering, in their own shape, while the server stops (app.ts). */
export const HEALTH_ROUTES = new Set(['/health', '/health/live']);

export function registerHealthRoutes(
  app: FastifyInstance,
  pool: PosePool,
  opts: { testDouble: boolean; stopping: () => boolean; jobs: Pick<JobQueue, 'health'> },
): void {
  app.get('/health', { schema: healthRouteSchema }, async (_request, reply) => {
    const jobs = opts.jobs.health();
    const pooled = pool.health();
    // The synchronous route needs no Redis: a job queue that is away degrades readiness, it does not fail it.
    const status = pooled.status === 'ready' && jobs.status !== 'ready' ? 'degraded' : pooled.status;
    // The model served (its keypoint names and skeleton edges: the page draws frames as they stream); null until a worker is ready.
    const body = { ...pooled, status, jobs, model: pool.model() };
    // Not ready while stopping (load balancers stop sending), whatever the workers say.
    reply.code(pool.isAvailable() && !opts.stopping() ? 200 : 503);
    return opts.testDouble ? { ...body, warning: 'POSE_MODEL=synthetic is a test double: its keypoints are not real poses' } : body;
  });

  app.get('/health/live', { schema: liveRouteSchema }, async () => ({ status: 'live' }));
}
