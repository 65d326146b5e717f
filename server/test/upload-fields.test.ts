import { describe, expect, it } from 'vitest';
import { parseFields } from '../upload/fields.js';

const limits = { defaultFps: 10, defaultMaxFrames: 300, maxFramesLimit: 3000 };

describe('parseFields', () => {
  it('applies the contract defaults', () => {
    expect(parseFields({}, limits)).toEqual({ role: 'rider', fps: 10, maxFrames: 300, tracking: true, smoothing: true });
  });

  it('accepts valid values', () => {
    expect(parseFields({ role: 'coach_2', fps: '2.5', maxFrames: '40', tracking: 'false', smoothing: '0' }, limits)).toEqual({
      role: 'coach_2',
      fps: 2.5,
      maxFrames: 40,
      tracking: false,
      smoothing: false,
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
