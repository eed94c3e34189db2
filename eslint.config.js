import neostandard from 'neostandard'

// Imports run one way (docs/architecture.md): engine → adapters → rules, engine → rules.
// test/unit/architecture.test.ts checks the same, and cycles, on every run.
const upward = (message, groups) => ({ 'no-restricted-imports': ['error', { patterns: [{ group: groups, message }] }] })

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tmp/**'] }),
  {
    files: ['rules/**/*.ts'],
    rules: upward('rules/ is the base layer: it imports neither adapters/ nor engine/, nor any transport.', ['**/adapters/**', '**/engine/**', 'mqtt', 'mqtt/*', 'nats', 'nats/*', 'aedes', 'aedes/*', 'node:net', 'node:tls', 'node:http', 'node:https'])
  },
  {
    files: ['adapters/**/*.ts'],
    rules: upward('adapters/ sits on rules/: it does not import engine/ (nor the embedded broker).', ['**/engine/**', 'aedes', 'aedes/*'])
  }
]
