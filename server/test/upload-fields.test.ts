import { describe, expect, it } from 'vitest';
import { parseFields, parseUploadJobBody } from '../upload/fields.js';

const limits = { defaultFps: 10, defaultMaxFrames: 300, maxFramesLimit: 3000 };

describe('parseFields', () => {
  it('applies the contract defaults', () => {
    expect(parseFields({}, limits)).toEqual({ role: 'rider', fps: 10, maxFrames: 300, tracking: true, smoothing: true, metrics: false });
  });

  it('accepts valid values', () => {
    expect(
      parseFields({ role: 'coach_2', fps: '2.5', maxFrames: '40', tracking: 'false', smoothing: '0', metrics: 'yes' }, limits),
    ).toEqual({
      role: 'coach_2',
      fps: 2.5,
      maxFrames: 40,
      tracking: false,
      smoothing: false,
      metrics: true,
    });
  });

  it.each([
    [{ role: 'Rider' }, 'role'],
    [{ role: '../etc' }, 'role'],
    [{ role: 'a'.repeat(33) }, 'role'],
    [{ fps: '0' }, 'fps'],
    [{ fps: '-1' }, 'fps'],
    [{ fps: 'ten' }, 'fps'],
    [{ fps: '1e3' }, 'fps'],
    [{ maxFrames: '0' }, 'maxFrames'],
    [{ maxFrames: '3001' }, 'maxFrames'],
    [{ maxFrames: '1.5' }, 'maxFrames'],
    [{ tracking: 'maybe' }, 'tracking'],
    [{ 'name; rm -rf /': 'x' }, 'name_ rm -rf _'], // echoed sanitised
  ])('rejects %o with BAD_FIELD naming the field', (fields, field) => {
    expect(() => parseFields(fields as Record<string, string>, limits)).toThrow(
      expect.objectContaining({ code: 'BAD_FIELD', status: 400, details: { field } }),
    );
  });

  it('refuses callbackUrl unless the jobs route asks for its fields (it checks the URL itself)', () => {
    expect(() => parseFields({ callbackUrl: 'https://hooks.example.com/x' }, limits)).toThrow(
      expect.objectContaining({ code: 'BAD_FIELD', details: { field: 'callbackUrl' }, message: expect.stringMatching(/jobs API/) }),
    );
    expect(parseFields({ callbackUrl: 'https://hooks.example.com/x' }, limits, { jobFields: true })).toEqual(parseFields({}, limits));
    expect(() => parseFields({ callbackURL: 'x' }, limits, { jobFields: true })).toThrow(/known: .*callbackUrl/);
  });
});

describe('parseUploadJobBody (POST /api/jobs with JSON)', () => {
  const id = '0123456789abcdef0123456789abcdef';

  it('turns JSON strings, numbers and booleans into the multipart fields', () => {
    const body = parseUploadJobBody({ uploadId: id, fps: 2.5, maxFrames: 40, tracking: false, role: 'coach' });
    expect(body).toEqual({ uploadId: id, fields: { fps: '2.5', maxFrames: '40', tracking: 'false', role: 'coach' } });
    expect(parseFields(body.fields, limits)).toEqual({
      role: 'coach',
      fps: 2.5,
      maxFrames: 40,
      tracking: false,
      smoothing: true,
      metrics: false,
    });
  });

  it.each([
    [null, 'BAD_REQUEST', undefined],
    [[id], 'BAD_REQUEST', undefined],
    [{ fps: 5 }, 'MISSING_VIDEO', undefined],
    [{ uploadId: 'abc' }, 'BAD_FIELD', 'uploadId'],
    [{ uploadId: '../../etc/passwd' }, 'BAD_FIELD', 'uploadId'],
    [{ uploadId: 42 }, 'BAD_FIELD', 'uploadId'],
    [{ uploadId: id, fps: null }, 'BAD_FIELD', 'fps'],
    [{ uploadId: id, role: ['a'] }, 'BAD_FIELD', 'role'],
    [{ uploadId: id, role: 'r'.repeat(2000) }, 'BAD_FIELD', 'role'],
  ])('%j → %s', (body, code, field) => {
    let error: { code?: string; details?: { field?: string } } = {};
    try {
      parseUploadJobBody(body);
    } catch (e) {
      error = e as typeof error;
    }
    expect(error.code).toBe(code);
    expect(error.details?.field).toBe(field);
  });

  it('a number JSON writes in exponent form is refused as the text field would be', () => {
    expect(() => parseFields(parseUploadJobBody({ uploadId: id, fps: 1e21 }).fields, limits)).toThrow(/fps/);
  });
});
