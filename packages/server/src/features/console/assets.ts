import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

/** One built file of the console, held in memory: the whole console is a few hundred KB. */
export interface Asset {
  type: string;
  body: Buffer;
  /** The gzip form, when it is smaller. */
  gzip?: Buffer;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** Where `npm install` (the console package's Vite build) put the console. */
export function consoleDistDir(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('@muster/console/package.json');
    return join(dirname(pkg), 'dist');
  } catch {
    return undefined;
  }
}

/**
 * The built console: `index.html` and the content-hashed files under `assets/`, keyed by their
 * URL path. Undefined when the console was not built, which the routes then say in words.
 */
export function loadAssets(dir: string | undefined): Map<string, Asset> | undefined {
  if (!dir || !existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const body = readFileSync(path);
      const type = TYPES[extname(name)] ?? 'application/octet-stream';
      const gzip = /^(text|image\/svg|application\/json)/.test(type)
        ? gzipSync(body, { level: 9 })
        : undefined;
      assets.set(`/${relative(dir, path).split(sep).join('/')}`, {
        type,
        body,
        ...(gzip && gzip.length < body.length ? { gzip } : {}),
      });
    }
  };
  walk(dir);
  return assets;
}
