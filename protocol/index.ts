export * from './detect.js';
export * from './health.js';
export * from './lifecycle.js';
export * from './spec.js';
