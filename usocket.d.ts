// `fdpass/usocket` for resolvers that do not read package.json "exports" (TypeScript's node10 resolution).
export * from './dist/src/usocket'
