/**
 * The process: configuration, tracing, logger, worker pool, HTTP server, signals.
 * Bad configuration ends here with one line naming the variable (exit 2), never a stack trace.
 */
import { PROTOCOL } from '../protocol/index.js';
import { buildServer } from './app.js';
import { type Config, ConfigError, loadConfig, loadDotEnv } from './config.js';
import { createPool } from './create-pool.js';
import { createLogger } from './logger.js';
import type { MediaTools } from './media/media-tools.js';
import { resolveMediaTools } from './runtime/ffmpeg-path.js';
import { readPythonChoice } from './runtime/python-choice.js';
import { startTelemetry } from './telemetry.js';

function fail(message: string): never {
  process.stderr.write(`posepool: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  loadDotEnv();
  let config: Config;
  try {
    config = loadConfig(process.env, { pythonChoice: () => readPythonChoice() });
  } catch (err) {
    if (err instanceof ConfigError) fail(`configuration error: ${err.message}`);
    throw err;
  }
  // Before the app is built (its @fastify/otel plugin), and before the logger (trace ids on its lines).
  const telemetry = await startTelemetry(process.env);
  const logger = createLogger(config.logLevel, { traceIds: telemetry !== null });
  if (telemetry) logger.info(telemetry.exporter, 'tracing on: spans exported with OpenTelemetry');

  let tools: MediaTools;
  try {
    const found = resolveMediaTools();
    tools = { ffmpeg: found.ffmpeg.path, ffprobe: found.ffprobe.path };
    logger.info({ ffmpeg: found.ffmpeg, ffprobe: found.ffprobe }, 'media tools');
  } catch (err) {
    fail(`${(err as Error).message} (set FFMPEG_PATH / FFPROBE_PATH, or run \`npm run setup\`)`);
  }

  if (PROTOCOL.models[config.model]?.testDouble) {
    logger.warn(
      '#### POSE_MODEL=synthetic: the workers run the SYNTHETIC TEST BACKEND (a test double). Its keypoints are NOT real poses. ####',
    );
  }

  const pool = createPool(config, logger.child({ component: 'pool' }));
  logger.info(
    {
      model: config.model,
      device: config.device,
      workers: config.workers,
      workersSetting: config.workersSetting,
      threads: config.threads,
      batchSize: config.batchSize,
      python: config.python,
      pythonSource: config.pythonSource,
      transport: config.transport,
    },
    'starting worker pool',
  );
  pool.start();

  const { app, admission } = await buildServer({ config, pool, tools, logger, telemetry });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: no new requests, finishing in-flight ones');
    const hardStop = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + 15_000);
    hardStop.unref();
    admission.close();
    // Keep-alive connections would hold close() until their timeout: drop each as soon as it is idle.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
    await Promise.race([app.close(), new Promise((r) => setTimeout(r, config.shutdownGraceMs))]);
    clearInterval(sweep);
    await pool.close({ graceMs: 5_000 });
    await telemetry?.shutdown(); // the last spans, exported
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await pool.close({ graceMs: 1_000 });
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message} (set PORT / HOST)`);
  }
}

main().catch((err) => {
  process.stderr.write(`posepool: fatal: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
