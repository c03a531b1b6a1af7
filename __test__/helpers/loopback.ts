/**
 * Small clients for tests that check a listener still serves after a
 * handoff: one HTTP GET on 127.0.0.1, and reading a socket to its end.
 */
import * as http from 'node:http'
import type * as net from 'node:net'

/** The body of `GET /` on 127.0.0.1:`port`, on a fresh connection (no agent). */
export function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent: false }, (res) => {
        let body = ''
        res
          .setEncoding('utf8')
          .on('data', (c) => (body += c))
          .on('end', () => resolve(body))
      })
      .on('error', reject)
  })
}

/** Everything `socket` reads until the peer ends it, as UTF-8 text. */
export function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    socket
      .setEncoding('utf8')
      .on('data', (c) => (text += c))
      .on('end', () => resolve(text))
      .on('error', reject)
  })
}
