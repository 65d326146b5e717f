/**
 * /docs and /docs/json (OpenAPI from the route schemas), and that the same schemas validate:
 * requests (a malformed job id → 400 BAD_FIELD) and responses (a body that breaks its schema →
 * 500, never sent). The app runs with a fake pool (no workers needed: only the HTTP layer is tested).
 */
import { EventEmitter } from 'node:events';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolEventMap, PoolHealth, PosePool } from '../../workers/index.js';
import { buildServer, type PoseServer } from '../app.js';
import { loadConfig } from '../config.js';
import { parseFields } from '../upload/fields.js';
import { findTools } from './support/tools.js';

function fakePool(health: () => PoolHealth): PosePool {
  return Object.assign(new EventEmitter<PoolEventMap>(), {
    detect: async () => {
      throw new Error('not used');
    },
    model: () => null,
    desired: 1,
    health,
    isAvailable: () => true,
    lastErrors: () => [],
  });
}

const goodHealth = (): PoolHealth => ({
  status: 'ready',
  ready: 1,
  desired: 1,
  workers: [{ id: 'w1', state: 'ready', pid: 123, model: 'synthetic', device: 'cpu', restarts: 0, lastError: null }],
});

describe('OpenAPI and schema validation', () => {
  let server: PoseServer;
  let health: () => PoolHealth = goodHealth;
  const config = loadConfig({ POSE_PYTHON: process.execPath, POSE_MODEL: 'synthetic', POSE_WORKERS: '1', MAX_FRAMES_LIMIT: '1234' });

  beforeAll(async () => {
    server = await buildServer({ config, pool: fakePool(() => health()), tools: findTools(), logger: pino({ level: 'silent' }) });
    await server.app.ready();
  });
  afterAll(async () => server?.app.close());

  it('serves Swagger UI at /docs and the OpenAPI document at /docs/json', async () => {
    const ui = await server.app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toMatch(/swagger-ui/i);
    const css = await server.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' });
    expect(css.statusCode).toBe(200);

    const doc = (await server.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.info.title).toBe('posepool');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/jobs',
        '/api/jobs/{id}',
        '/api/jobs/{id}/events',
        '/api/jobs/{id}/frames',
        '/api/upload-video-with-pose',
        '/api/uploads',
        '/api/uploads/{id}',
        '/health',
        '/health/live',
        '/metrics',
      ].sort(),
    );

    const upload = doc.paths['/api/upload-video-with-pose'].post;
    const form = upload.requestBody.content['multipart/form-data'].schema;
    expect(form.required).toEqual(['video']);
    expect(form.properties.video).toMatchObject({ type: 'string', format: 'binary' });
    expect(form.properties.maxFrames.maximum).toBe(1234);
    const ok = upload.responses['200'].content['application/json'].schema;
    expect(ok.required).toEqual(['id', 'role', 'video', 'model', 'frames', 'summary']);
    expect(upload.responses['4XX'] ?? upload.responses['4xx']).toBeDefined();

    const postJob = doc.paths['/api/jobs'].post;
    expect(postJob.requestBody.content['multipart/form-data'].schema.required).toEqual(['video']);
    // Or JSON naming a finished resumable upload, with the same fields.
    const fromUpload = postJob.requestBody.content['application/json'].schema;
    expect(fromUpload.required).toEqual(['uploadId']);
    expect(Object.keys(fromUpload.properties).sort()).toEqual([
      'callbackUrl',
      'fps',
      'maxFrames',
      'metrics',
      'role',
      'smoothing',
      'tracking',
      'uploadId',
    ]);
    expect(doc.paths['/api/uploads'].post.tags).toEqual(['uploads']);
    expect(Object.keys(doc.paths['/api/uploads/{id}']).sort()).toEqual(['delete', 'head', 'patch']);
    expect(postJob.responses['202'].content['application/json'].schema.properties.state.enum).toEqual([
      'queued',
      'running',
      'succeeded',
      'failed',
      'cancelled',
    ]);
    expect(doc.paths['/api/jobs/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(doc.paths['/api/jobs/{id}'].delete.responses['204']).toBeDefined();
    expect(doc.paths['/health'].get.responses['503']).toBeDefined();
  });

  it('documents the form fields with the rules upload/fields.ts enforces', async () => {
    const doc = (await server.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const props = doc.paths['/api/upload-video-with-pose'].post.requestBody.content['multipart/form-data'].schema.properties;
    const validateRole = new Ajv().compile(props.role);
    for (const role of ['rider', 'a', 'coach_2', 'x-y', 'Rider', '1abc', '', 'a'.repeat(33), 'has space']) {
      let accepted = true;
      try {
        parseFields({ role }, config);
      } catch {
        accepted = false;
      }
      expect(validateRole(role), role).toBe(accepted);
    }
    for (const [name, value] of [
      ['maxFrames', '1234'],
      ['maxFrames', '1235'],
      ['maxFrames', '0'],
      ['fps', '240'],
      ['fps', '241'],
      ['fps', '0.5'],
    ] as const) {
      const validate = new Ajv().compile(props[name]);
      let accepted = true;
      try {
        parseFields({ [name]: value }, config);
      } catch {
        accepted = false;
      }
      expect(validate(Number(value)), `${name}=${value}`).toBe(accepted);
    }
    expect(parseFields({}, config)).toMatchObject({ role: props.role.default, fps: props.fps.default, maxFrames: props.maxFrames.default });
  });

  it('documents callbackUrl on POST /api/jobs only, with the bounds the server enforces', async () => {
    const doc = (await server.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const form = (p: string) => doc.paths[p].post.requestBody.content['multipart/form-data'].schema.properties;
    expect(form('/api/upload-video-with-pose').callbackUrl).toBeUndefined();
    const callbackUrl = form('/api/jobs').callbackUrl;
    expect(callbackUrl).toMatchObject({ type: 'string', format: 'uri', maxLength: 1024 });
    expect(callbackUrl.description).toMatch(/WEBHOOK_ALLOWED_HOSTS/);
    const validate = new Ajv().compile({ ...callbackUrl, format: undefined });
    for (const [url, ok] of [
      ['https://hooks.example.com/x', true],
      ['HTTP://hooks.example.com/x', true],
      ['ftp://hooks.example.com/x', false],
      [`https://hooks.example.com/${'a'.repeat(1024)}`, false],
    ] as const) {
      expect(validate(url), url).toBe(ok);
    }
  });

  it('validates request params with the schema: a malformed job id is 400 BAD_FIELD', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/api/jobs/not-a-uuid' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('BAD_FIELD');
  });

  it('validates responses with the schema: a body that breaks it becomes 500 INTERNAL_ERROR', async () => {
    expect((await server.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    health = () => ({ ...goodHealth(), status: 'sleepy' as never });
    const bad = await server.app.inject({ method: 'GET', url: '/health' });
    expect(bad.statusCode).toBe(500);
    expect(bad.json().error.code).toBe('INTERNAL_ERROR');
    expect(bad.body).not.toMatch(/sleepy/);
    health = () => {
      const h = goodHealth();
      delete (h.workers[0] as Partial<(typeof h.workers)[0]>).restarts;
      return h;
    };
    expect((await server.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(500);
    health = goodHealth;
    // Fields beyond the schema stay (the contract lets models and health add fields).
    health = () => ({ ...goodHealth(), extra: { kept: true } }) as PoolHealth;
    expect((await server.app.inject({ method: 'GET', url: '/health' })).json().extra).toEqual({ kept: true });
    health = goodHealth;
  });

  it('serves the page and its script with a restrictive CSP, hidden from the API document', async () => {
    const page = await server.app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.body).toContain('<script src="/app.js"');
    const js = await server.app.inject({ method: 'GET', url: '/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    // tus-js-client's browser build, from node_modules: no CDN.
    expect(page.body).toContain('<script src="/vendor/tus.min.js"');
    const tus = await server.app.inject({ method: 'GET', url: '/vendor/tus.min.js' });
    expect(tus.statusCode).toBe(200);
    expect(tus.headers['content-type']).toMatch(/^text\/javascript/);
    expect(tus.body).toMatch(/\.tus\s*=/);
  });
});
