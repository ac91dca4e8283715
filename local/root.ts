import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The project folder (where package.json is), whether this runs compiled from dist/ or from source. */
export function projectRoot(from = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}
