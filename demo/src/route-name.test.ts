import { describe, expect, it } from 'vitest';
import { routeOf } from './route-name.js';

describe('routeOf', () => {
  it.each([
    ['/', '/'],
    ['/?item=teapot', '/'],
    ['/price/teapot', '/price/:item'],
    ['/inventory/mug?x=1', '/inventory/:item'],
    ['/health', '/health'],
    ['/price/teapot/extra', '/price/teapot/extra'],
  ])('%s → %s', (path, route) => {
    expect(routeOf(path)).toBe(route);
  });
});
