export * from './spec.js';
export * from './lifecycle.js';
export * from './detect.js';
export * from './health.js';
