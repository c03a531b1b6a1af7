/**
 * The native addon, loaded through the loader that `napi build` generates
 * (`binding.js` at the package root), which picks the right prebuilt binary
 * for this platform.
 */
import { join } from 'node:path'

import type * as Binding from '../../binding'
import { explainLoadFailure } from './no-binary'

// This file runs as dist/src/internal/native.js; the loader sits at the package root.
const root = join(__dirname, '..', '..', '..')

function load(): typeof Binding {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../../binding.js')
  } catch (err) {
    // No binary for this platform, or its package is missing: say which and
    // what to install (ERR_FDPASS_NO_BINARY) rather than "Cannot find module".
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    throw explainLoadFailure(err, root, (require('../../../package.json') as { version: string }).version)
  }
}

export const native: typeof Binding = load()
