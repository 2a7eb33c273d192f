import { describe, expect, it } from 'vitest';
import { DemoConfigError, readHttpUrl, readInteger, readPort, readPortList } from './env.js';

describe('demo environment readers', () => {
  it('use the default when the variable is unset or blank', () => {
    expect(readPort({}, 'P', 8080)).toBe(8080);
    expect(readPort({ P: '  ' }, 'P', 8080)).toBe(8080);
    expect(readPortList({}, 'L', [9412, 9413])).toEqual([9412, 9413]);
    expect(readHttpUrl({}, 'U', 'http://127.0.0.1:8081/')).toBe('http://127.0.0.1:8081/');
  });

  it('read good values', () => {
    expect(readPort({ P: '65535' }, 'P', 1)).toBe(65535);
    expect(readInteger({ N: '0' }, 'N', 5, 0, 100)).toBe(0);
    expect(readPortList({ L: '9412, 9413,9414' }, 'L', [])).toEqual([9412, 9413, 9414]);
    expect(readHttpUrl({ U: 'http://backend:8081' }, 'U', '')).toBe('http://backend:8081/');
  });

  it.each([
    ['P', { P: '0' }, () => readPort({ P: '0' }, 'P', 1)],
    ['P', { P: '65536' }, () => readPort({ P: '65536' }, 'P', 1)],
    ['P', { P: '80a' }, () => readPort({ P: '80a' }, 'P', 1)],
    ['N', { N: '-1' }, () => readInteger({ N: '-1' }, 'N', 1, 0, 100)],
    ['N', { N: '101' }, () => readInteger({ N: '101' }, 'N', 1, 0, 100)],
    ['N', { N: '1.5' }, () => readInteger({ N: '1.5' }, 'N', 1, 0, 100)],
    ['L', { L: '9412,' }, () => readPortList({ L: '9412,' }, 'L', [])],
    ['L', { L: '9412,9412' }, () => readPortList({ L: '9412,9412' }, 'L', [])],
    ['U', { U: 'amqp://x' }, () => readHttpUrl({ U: 'amqp://x' }, 'U', '')],
    ['U', { U: 'not a url' }, () => readHttpUrl({ U: 'not a url' }, 'U', '')],
  ])('reject a bad %s %j naming the variable and what it accepts', (variable, env, read) => {
    const value = Object.values(env)[0] ?? '';
    expect(read).toThrow(DemoConfigError);
    expect(read).toThrow(new RegExp(`^${variable}: expected .+, got "${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"$`));
  });
});
