'use strict'
// A bounded HTTP load generator for the handoff examples: a few GET
// requests in flight at once (no keep-alive, so every request is a new
// connection that some process must accept) on 127.0.0.1, until stop().

const http = require('node:http')

/**
 * Starts the load on `port`. `serverOf(status, body)` names who served a
 * response (counted in `stats.by`), or returns undefined for a bad one
 * (counted as failed). At most `maxRequests` are sent, whatever the timings.
 */
function startLoad(port, { concurrency, maxRequests, timeout, serverOf }) {
  const stats = { total: 0, failed: 0, by: {}, firstError: undefined }
  let stopping = false
  const fail = (why) => {
    stats.failed++
    stats.firstError ??= why
  }
  const request = () =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => (body += chunk))
        res.on('end', () => {
          const server = serverOf(res.statusCode, body)
          if (server === undefined) fail(`bad response ${res.statusCode} ${JSON.stringify(body)}`)
          else stats.by[server] = (stats.by[server] ?? 0) + 1
          resolve()
        })
        res.on('error', (err) => (fail(err.message), resolve()))
      })
      req.on('timeout', () => req.destroy(new Error('request timed out')))
      req.on('error', (err) => (fail(`${err.code ?? ''} ${err.message}`), resolve()))
    })
  const loop = async () => {
    while (!stopping && stats.total < maxRequests) {
      stats.total++
      await request()
    }
  }
  const loops = Array.from({ length: concurrency }, loop)
  return {
    /** Stops sending, waits for the requests in flight, and returns the counts. */
    async stop() {
      stopping = true
      await Promise.all(loops)
      return stats
    },
  }
}

module.exports = { startLoad }
