/** GET /metrics (Prometheus text format) and the hook that times every HTTP request. Open like /health, for scrapers. */
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../metrics.js';

export function registerMetricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern (/api/jobs/:id), never the raw URL: bounded label values.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.scrape();
      reply.type(contentType);
      return body;
    },
  );
}
