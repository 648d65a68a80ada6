/** bento-run's own package.json: its version and the Node.js versions it supports. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface PackageJson {
  readonly version: string;
  readonly engines?: { readonly node?: string };
}

let cached: PackageJson | undefined;

/** package.json, read once (this file is dist/src/util/package.js once built). */
function packageJson(): PackageJson {
  cached ??= JSON.parse(
    readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8'),
  ) as PackageJson;
  return cached;
}

/** bento-run's version, e.g. `0.1.0`. */
export function packageVersion(): string {
  return packageJson().version;
}

/** package.json's `engines.node` range, or null when it has none. */
export function enginesNode(): string | null {
  return packageJson().engines?.node ?? null;
}
