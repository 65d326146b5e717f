/**
 * OpenAPI at /docs (@fastify/swagger + @fastify/swagger-ui), generated from the route schemas, and
 * the response check: every response whose route declares a schema for its status is validated
 * against it (ajv) before it is sent. A response that breaks its own schema is a bug: it becomes
 * 500 INTERNAL_ERROR with the validation message in the log, never a silent contract change.
 *
 * Register before the routes (swagger collects them as they are added).
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { REPO_ROOT } from '../config.js';

export class ResponseValidationError extends Error {
  constructor(where: string, detail: string) {
    super(`response of ${where} does not match its schema: ${detail}`);
    this.name = 'ResponseValidationError';
  }
}

/** Serializer compiler: ajv-validate, then JSON.stringify (fields beyond the schema are kept, as the contract allows). */
export function validatingSerializerCompiler(ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false })) {
  return ({ schema, method, url, httpStatus }: { schema: unknown; method: string; url: string; httpStatus?: string }) => {
    const validate = ajv.compile(schema as object);
    const where = `${method} ${url} ${httpStatus ?? ''}`.trim();
    return (data: unknown): string => {
      if (!validate(data)) throw new ResponseValidationError(where, ajv.errorsText(validate.errors, { dataVar: 'response' }));
      return JSON.stringify(data);
    };
  };
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export async function registerDocs(app: FastifyInstance): Promise<void> {
  app.setSerializerCompiler(validatingSerializerCompiler());
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'posepool',
        description:
          'Per-frame body pose for uploaded videos, served by a pool of warm Python workers. ' +
          'Errors are JSON `{ "error": { "code", "message", "requestId" } }` with a stable code.',
        version: packageVersion(),
      },
      tags: [
        { name: 'pose', description: 'Pose a video: synchronously, or as a job for long videos' },
        { name: 'operations', description: 'Probes and metrics' },
      ],
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'only when API_TOKEN is set' } },
      },
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // No calls to an outside validator: the page works on a closed network.
    uiConfig: { validatorUrl: null, deepLinking: true },
  });
}

/**
 * Validator compiler of the multipart routes: their body schema is documentation only (the body is a
 * stream that @fastify/multipart reads inside the handler, and upload/fields.ts validates the fields
 * with the same rules: server/test/docs.test.ts checks that they agree). Other parts are validated.
 */
export function multipartValidatorCompiler() {
  const ajv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: true, strict: false, validateFormats: false });
  return ({ schema, httpPart }: { schema: unknown; httpPart?: string }) =>
    httpPart === 'body' ? () => true : ajv.compile(schema as object);
}
