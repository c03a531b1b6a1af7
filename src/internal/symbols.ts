/**
 * Symbols the public classes share without making them public, as Node's
 * own `lib/internal` modules do: a key no user code can name.
 */

/**
 * The token of the internal constructors of `FdSocket`, `FdServer` and
 * `SyncSocket` (a user's `new` gets `ERR_ILLEGAL_CONSTRUCTOR`), and the key
 * of `FdSocket`'s static that wraps an fd fdpass created (accepted,
 * connected).
 */
export const kAdopt: unique symbol = Symbol('fdpass.adopt')
