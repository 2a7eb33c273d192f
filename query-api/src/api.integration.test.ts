// The API tests against the ClickHouse server (18.16 from Debian) over HTTP.
import { defineApiSuite } from './api-suite.test.helpers.js';

defineApiSuite({ name: 'the ClickHouse server', url: process.env['TRACEHOUSE_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123' });
