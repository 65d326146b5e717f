/** Where the tests' committed media lives: server/test/fixtures (clips) and pose-service/tests/fixtures (images). */
import path from 'node:path';

export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
export const IMAGES = path.join(import.meta.dirname, '..', '..', '..', 'pose-service', 'tests', 'fixtures');
