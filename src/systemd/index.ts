/**
 * `fdpass/systemd`: socket activation and the service manager protocol,
 * without libsystemd — the fds a manager passed in ({@link listenFds},
 * {@link listenFdsByName}), notifications ({@link notify}, {@link ready},
 * {@link watchdog}), and the fd store ({@link storeFds},
 * {@link removeStoredFds}) that keeps listening sockets and memfds alive
 * across restarts.
 *
 * @packageDocumentation
 */
export type { ListenFdsOptions } from './listen-fds'
export { LISTEN_FDS_START, listenFds, listenFdsByName } from './listen-fds'
export { MAX_FDNAME_LENGTH, notify, ready, removeStoredFds, storeFds, watchdog, watchdogInterval } from './notify'
