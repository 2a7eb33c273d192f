import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from './engine.js';
import { HttpEngine } from './http-engine.js';
import { ChdbEngine } from './chdb-engine.js';
import { bindSql, type BindMode } from './sql-binding.js';
import { ENGINES, uniqueDatabase } from './test-support/fixtures.js';
import { INJECTION_STRINGS } from './test-support/injection-strings.js';

/**
 * The smoke test of both engines (foundation issue, item 5) and the binding
 * function against the real parsers: a hostile string bound as a parameter
 * comes back byte for byte, in every mode the engine supports.
 */
async function openEngine(url: string): Promise<Engine> {
  return url.startsWith('chdb:')
    ? ChdbEngine.open({ queryTimeoutMs: 30_000 })
    : new HttpEngine({ url, queryTimeoutMs: 30_000 });
}

describe.each(ENGINES)('engine smoke test on the $name', ({ url }) => {
  const db = uniqueDatabase('th_smoke');
  let engine: Engine;
  let modes: BindMode[];

  beforeAll(async () => {
    engine = await openEngine(url);
    const [row] = await engine.query<{ v: string }>({ sql: 'SELECT version() AS v', params: {} });
    // Old servers only take literals; modern ones take both.
    modes = String(row?.v).startsWith('18.') ? ['literal'] : ['server', 'literal'];
  });
  afterAll(async () => {
    await engine?.execute({ sql: `DROP DATABASE IF EXISTS ${db}`, params: {} });
    await engine?.close();
  });

  it('creates a database and a table, inserts and reads back', async () => {
    await engine.execute({ sql: `CREATE DATABASE IF NOT EXISTS ${db}`, params: {} });
    await engine.execute({
      sql: `CREATE TABLE ${db}.smoke (id UInt64, name String, tags Array(String)) ENGINE = MergeTree ORDER BY id`,
      params: {},
    });
    await engine.insertTabSeparated(
      `${db}.smoke`,
      ['id', 'name', 'tags'],
      // Two parts of one body: a row may not even end where a part does.
      [Buffer.from("1\tone\t['a','b']\n2\ttwo"), Buffer.from("\\twith tab\t[]\n")],
    );
    const rows = await engine.query<{ id: string; name: string; tags: string[] }>({
      sql: `SELECT id, name, tags FROM ${db}.smoke ORDER BY id`,
      params: {},
    });
    expect(rows.map((r) => ({ ...r, id: Number(r.id) }))).toEqual([
      { id: 1, name: 'one', tags: ['a', 'b'] },
      { id: 2, name: 'two\twith tab', tags: [] },
    ]);
  });

  it('binds hostile strings so that they come back unchanged', async () => {
    for (const mode of modes) {
      for (const value of INJECTION_STRINGS) {
        const rows = await engine.query<{ s: string; l: string }>(
          bindSql('SELECT {s:String} AS s, length({s:String}) AS l', { s: value }, mode),
        );
        expect(rows, `${mode}: ${JSON.stringify(value)}`).toEqual([{ s: value, l: String(Buffer.byteLength(value)) }]);
      }
      const arrays = await engine.query<{ n: string }>(
        bindSql(
          "SELECT count() AS n FROM system.one WHERE 'x' IN {xs:Array(String)} AND has({xs:Array(String)}, {y:String})",
          { xs: [...INJECTION_STRINGS, 'x'], y: INJECTION_STRINGS[0] },
          mode,
        ),
      );
      expect(arrays).toEqual([{ n: '1' }]);
    }
  });

  it('binds 64-bit integers exactly', async () => {
    for (const mode of modes) {
      const rows = await engine.query<{ n: string }>(
        bindSql('SELECT {n:UInt64} AS n', { n: 18446744073709551615n }, mode),
      );
      expect(rows).toEqual([{ n: '18446744073709551615' }]);
    }
  });

  it('streams a large result row by row, in order, with bound parameters', async () => {
    for (const mode of modes) {
      let next = 0;
      let wrong = 0;
      await engine.queryEach<{ n: string; s: string }>(
        bindSql(
          'SELECT number AS n, {s:String} AS s FROM system.numbers LIMIT {limit:UInt32}',
          { s: INJECTION_STRINGS[1], limit: 200_000 },
          mode,
        ),
        (row) => {
          if (row.n !== String(next) || row.s !== INJECTION_STRINGS[1]) wrong += 1;
          next += 1;
        },
      );
      expect({ mode, rows: next, wrong }).toEqual({ mode, rows: 200_000, wrong: 0 });
    }
  });

  it('streams: a server error becomes a StorageError, even after rows arrived; a consumer error passes unchanged', async () => {
    await expect(engine.queryEach({ sql: 'SELECT * FROM th_no_such_db.nothing', params: {} }, () => undefined)).rejects.toMatchObject({
      name: 'StorageError',
      code: 'server',
    });
    let seen = 0;
    const failure: unknown = await engine
      .queryEach(
        {
          sql: 'SELECT number AS n, throwIf(number = 150000) AS t FROM system.numbers LIMIT 200000 SETTINGS max_block_size = 1000',
          params: {},
        },
        () => {
          seen += 1;
        },
      )
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'StorageError', code: 'server' });
    expect(String((failure as Error).message)).toMatch(/throwIf/);
    // Over HTTP the error follows rows already sent; chdb fails the query whole.
    if (engine.kind === 'http') expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(150_001);

    const boom = new Error('the consumer failed');
    await expect(
      engine.queryEach<{ n: string }>({ sql: 'SELECT number AS n FROM system.numbers LIMIT 100000', params: {} }, (row) => {
        if (row.n === '10') throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await engine.query({ sql: 'SELECT 1 AS one', params: {} })).toEqual([{ one: 1 }]);
  });

  it('reads text: a server error after rows were sent rejects, it never passes for the last rows', async () => {
    const failing = {
      sql: 'SELECT number AS n, throwIf(number = 150000) AS t FROM system.numbers LIMIT 200000 SETTINGS max_block_size = 1000',
      params: {},
    };
    const failure: unknown = await engine.queryText(failing, 'TabSeparatedRaw').catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'StorageError', code: 'server' });
    expect(String((failure as Error).message)).toMatch(/throwIf/);
    // A whole answer still reads as it is.
    const text = await engine.queryText({ sql: 'SELECT number AS n FROM system.numbers LIMIT 3', params: {} }, 'TabSeparatedRaw');
    expect(text).toBe('0\n1\n2\n');
  });

  it('reads text up to maxBytes: a larger answer rejects as too_large, however far it had come', async () => {
    const sized = (rows: number) => ({
      sql: `SELECT toString(number) AS n, concat(n, '${'x'.repeat(100)}') AS pad FROM system.numbers LIMIT ${rows} SETTINGS max_block_size = 1000`,
      params: {},
    });
    const within = await engine.queryText(sized(1000), 'TabSeparatedRaw', { maxBytes: 1_000_000 });
    expect(within.split('\n')).toHaveLength(1001);
    // About 1 MB before the first block is refused, and about 11 MB, after more than one block went out.
    for (const maxBytes of [100_000, 10_000_000]) {
      const failure: unknown = await engine.queryText(sized(200_000), 'TabSeparatedRaw', { maxBytes }).catch((error: unknown) => error);
      expect({ maxBytes, failure }).toMatchObject({ maxBytes, failure: { name: 'StorageError', code: 'too_large', retryable: false } });
    }
  });

  it("stops a read when its signal aborts, rejecting with the signal's reason", async () => {
    const reason = new Error('the caller gave up');
    const aborted = AbortSignal.abort(reason);
    const one = { sql: 'SELECT 1 AS one', params: {} };
    await expect(engine.query(one, { signal: aborted })).rejects.toBe(reason);
    await expect(engine.queryEach(one, () => undefined, { signal: aborted })).rejects.toBe(reason);
    await expect(engine.queryText(one, 'TabSeparated', { signal: aborted })).rejects.toBe(reason);
    // A read in flight: over HTTP the request is cancelled (chdb cannot cancel a query).
    if (engine.kind === 'http') {
      const controller = new AbortController();
      setTimeout(() => controller.abort(reason), 200);
      const started = Date.now();
      await expect(engine.query({ sql: 'SELECT sleep(3) AS slept', params: {} }, { signal: controller.signal })).rejects.toBe(reason);
      expect(Date.now() - started).toBeLessThan(2000);
    }
    expect(await engine.query(one, { signal: new AbortController().signal })).toEqual([{ one: 1 }]);
  });

  it('turns a server error into a StorageError, final only when the data itself is rejected', async () => {
    // A server-side condition (here a missing database) may pass: retryable.
    await expect(engine.query({ sql: 'SELECT * FROM th_no_such_db.nothing', params: {} })).rejects.toMatchObject({
      name: 'StorageError',
      code: 'server',
      retryable: true,
    });
    // Text the server cannot parse fails the same way every time: final.
    await expect(engine.query({ sql: "SELECT toUInt8('not a number') AS n", params: {} })).rejects.toMatchObject({
      name: 'StorageError',
      code: 'server',
      retryable: false,
    });
  });
});
