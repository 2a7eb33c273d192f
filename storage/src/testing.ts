// @tracehouse/storage/testing: synthetic spans for the tests and benchmarks of
// packages built on storage. Kept off the main entry point, which is what
// production code imports.
export { generateSpans, DEFAULT_SERVICES } from './span-generator.js';
export type { GenerateOptions } from './span-generator.js';
