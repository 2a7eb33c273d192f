// The same API tests on the embedded current engine (chdb).
import { defineApiSuite } from './api-suite.test.helpers.js';

defineApiSuite({ name: 'the embedded engine (chdb)', url: 'chdb:' });
