/**
 * The native addon, loaded through the loader that `napi build` generates
 * (`binding.js` at the package root), which picks the right prebuilt binary
 * for this platform.
 */
import type * as Binding from '../binding'

// This file runs as dist/src/native.js; the loader sits at the package root.
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: typeof Binding = require('../../binding.js')
