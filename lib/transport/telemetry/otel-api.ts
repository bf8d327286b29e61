import { createRequire } from 'node:module';
import * as path from 'node:path';

import type * as OtelApiModule from '@opentelemetry/api';

/** The `@opentelemetry/api` module. */
export type OtelApi = typeof OtelApiModule;

/**
 * `require` as this module has it. The package is CommonJS (dist/cjs, with ESM entry points
 * that re-export it), where every module has its own `require`; a CommonJS build cannot
 * contain `import.meta`. The ES module form of these sources runs only in this repository
 * (its tests, the sample and the benchmark), whose root is the working directory: there,
 * the `require` is made for a file of that directory (Jest's createRequire, unlike Node's,
 * takes `dir/` for a file named `dir` and would look in the parent's node_modules).
 */
function ownRequire(): NodeJS.Require {
  return typeof require === 'function'
    ? require
    : createRequire(path.join(process.cwd(), 'package.json'));
}

/** undefined until the first look; then the module, or null when it is not installed. */
let loaded: OtelApi | null | undefined;

/**
 * `@opentelemetry/api`, loaded on first use, or null when it cannot be loaded: it is an
 * optional peer dependency, and without it the transport records nothing and costs nothing.
 *
 * It is loaded with `require`, not `import()`: synchronously, so that the first call of a
 * process is traced like the others (an `import()` would leave the calls made before it
 * settles untraced). Node's `import` of the package resolves to the same CommonJS file (its
 * `default` export condition), and whichever copy an SDK registers with, the API keeps what
 * it registers on one global that every copy reads.
 */
export function otelApi(): OtelApi | null {
  if (loaded === undefined) {
    try {
      loaded = ownRequire()('@opentelemetry/api') as OtelApi;
    } catch {
      // Not installed (MODULE_NOT_FOUND), or unusable: either way there is nothing to
      // report to, and an application must never fail because its telemetry cannot load.
      loaded = null;
    }
  }
  return loaded;
}
