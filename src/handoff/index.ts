/**
 * Listener handoff between an old and a new process (zero-downtime
 * restarts): `serveListeners()` in the old one, `takeListeners()` in the new.
 */
export { serveListeners, ListenerHandoff } from './serve'
export type { HandoffResult, ServeListenersOptions, TakenOptions } from './serve'
export { takeListeners, TakenListener, TakenListeners } from './take'
export type { TakeListenersOptions } from './take'
export type { HandoffSource } from './sources'
export type { ListenerKind, ListenerMetadata } from './protocol'
