/** HAProxy's `_getsocks` protocol: take HAProxy's listeners, or hand Node's to `haproxy -x`. */
export { getHaproxySockets } from './get'
export type { GetHaproxySocketsOptions, HaproxySocket } from './get'
export { HaproxySocketServer, serveHaproxySockets } from './serve'
export type { HaproxySocketEntry, HaproxySocketSource, HaproxyTransfer, ServeHaproxySocketsOptions } from './serve'
export { HAPROXY_SOCKET_OPTIONS } from './format'
