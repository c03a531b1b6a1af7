'use strict'
// `fdpass/usocket` for resolvers that do not read package.json "exports"
// (TypeScript's node10 resolution, old bundlers); Node uses "exports".
module.exports = require('./dist/src/usocket.js')
