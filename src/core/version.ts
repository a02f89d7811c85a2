import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package version, found by walking up from this file (works from src/ and dist/src/). */
function findVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tokenrelay' && pkg.version) return pkg.version;
    } catch {
      /* keep walking */
    }
    dir = path.dirname(dir);
  }
  return '0.0.0';
}

export const VERSION = findVersion();
