/** The error catalogues are documented, and every API code maps to one status through one handler. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROTOCOL } from '../../protocol/index.js';
import { toApiError } from '../app.js';
import { API_ERRORS, ApiError, type ApiErrorCode } from '../errors.js';

const README = readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('error catalogue', () => {
  it.each(Object.entries(API_ERRORS))('%s is documented in the README with its status', (code, { status }) => {
    expect(README).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
  });

  it.each(Object.keys(PROTOCOL.frameErrorCodes))('per-frame code %s is documented in the README', (code) => {
    expect(README).toMatch(new RegExp(`\\| \`${code}\` \\|`));
  });

  it('has the codes the contract requires, with its statuses', () => {
    const required: Record<string, number> = {
      MISSING_VIDEO: 400,
      BAD_FIELD: 400,
      NOT_A_VIDEO: 415,
      UPLOAD_TOO_LARGE: 413,
      UNDECODABLE_VIDEO: 422,
      POSE_SERVICE_UNAVAILABLE: 503,
      BUSY: 503,
      TIMEOUT: 504,
    };
    for (const [code, status] of Object.entries(required)) expect(API_ERRORS[code as ApiErrorCode].status).toBe(status);
  });

  it('maps anything thrown to a catalogue code, hiding internals', () => {
    expect(toApiError(new ApiError('BUSY')).code).toBe('BUSY');
    expect(toApiError(Object.assign(new Error('x'), { code: 'FST_REQ_FILE_TOO_LARGE' })).code).toBe('UPLOAD_TOO_LARGE');
    expect(toApiError(Object.assign(new Error('x'), { statusCode: 400 })).code).toBe('BAD_REQUEST');
    const internal = toApiError(new Error('secret /etc/path detail'));
    expect(internal.code).toBe('INTERNAL_ERROR');
    expect(internal.message).not.toContain('/etc/path');
    expect(new ApiError('BUSY', undefined, { retryAfterS: 3 }).body('r1')).toEqual({
      error: { code: 'BUSY', message: API_ERRORS.BUSY.message, requestId: 'r1' },
    });
  });
});
