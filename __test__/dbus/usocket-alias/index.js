'use strict'
// What a project that uses dbus-next puts here: require('fdpass/usocket').
// Inside fdpass's own tree the built entry is required by its path.
module.exports = require('../../../dist/src/usocket.js')
