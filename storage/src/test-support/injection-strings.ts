/** Strings that would change a query if they were concatenated into it. */
export const INJECTION_STRINGS = [
  "' OR 1=1 --",
  "x'; DROP DATABASE default; --",
  "\\' OR '1'='1",
  'back\\slash',
  "ends with backslash\\",
  "quote ' and \\' and \\\\'",
  '{name:String}',
  '\u0000nul\u0000',
  'tab\tnew\nline\rcr',
  '`backtick` "double"',
  "') UNION ALL SELECT name FROM system.tables --",
  'ünïcødé ✓ 🚀',
  '',
];

