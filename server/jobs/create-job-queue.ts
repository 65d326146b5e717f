/** The job engine the configuration asks for: BullMQ on Redis with REDIS_URL, else in memory; each with its webhooks. */
import type { FastifyBaseLogger } from 'fastify';
import type { Admission } from '../admission.js';
import type { Config } from '../config.js';
import type { PoseRequestDeps } from '../pipeline/pose-video-request.js';
import type { JobQueue } from './job-queue.js';
import { MemoryJobQueue } from './memory-queue.js';
import { RedisJobQueue } from './redis-queue.js';
import { MemoryWebhooks } from './webhook-memory.js';
import { type WebhookObserver, WebhookSender } from './webhooks.js';

export function createJobQueue(
  config: Config,
  pipeline: Omit<PoseRequestDeps, 'tempDir'>,
  ctx: { admission: Admission; log: FastifyBaseLogger; ffprobe: string; webhookObserver?: WebhookObserver },
): JobQueue {
  const { redisUrl, storageDir } = config.jobs;
  const webhooks = new WebhookSender(config.webhooks, ctx.log.child({ component: 'webhooks' }), ctx.webhookObserver);
  if (!redisUrl || !storageDir) return new MemoryJobQueue(config.jobs, pipeline, new MemoryWebhooks(webhooks));
  return new RedisJobQueue(
    { ...config.jobs, redisUrl, storageDir },
    {
      pipeline,
      ffprobe: ctx.ffprobe,
      admission: ctx.admission,
      tempDir: config.tempDir,
      concurrency: config.maxActiveVideos,
      log: ctx.log.child({ component: 'jobs' }),
      webhooks,
    },
  );
}
