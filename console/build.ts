import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

/**
 * Bundles the operator console into dist/console (part of `npm run build`): one minified, tree-shaken ES module
 * with a content hash in its name (served immutable), index.html naming it (served no-cache), the icon. Nothing
 * is loaded from elsewhere at run time, so the page works offline.
 */
const here = __dirname;
const out = join(here, '..', 'dist', 'console');

async function main(): Promise<void> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const result = await build({
    entryPoints: [join(here, 'src', 'main.tsx')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox113', 'safari16.4'],
    minify: true,
    treeShaking: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    jsx: 'automatic',
    outdir: out,
    entryNames: 'assets/console-[hash]',
    // MSAL is imported only where Entra ID sign-in is configured: a chunk of its own.
    splitting: true,
    chunkNames: 'assets/chunk-[hash]',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.entries(result.metafile.outputs);
  const bundle = outputs.find(([, output]) => output.entryPoint !== undefined)?.[0];
  if (!bundle) throw new Error('esbuild wrote no bundle');
  const name = `assets/${basename(bundle)}`;
  const html = readFileSync(join(here, 'index.html'), 'utf8').replace('%BUNDLE%', name);
  writeFileSync(join(out, 'index.html'), html);
  copyFileSync(join(here, 'favicon.svg'), join(out, 'favicon.svg'));
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  for (const [file] of outputs) {
    const bytes = readFileSync(file);
    console.log(
      `console: ${file.replace(/^.*dist\//, 'dist/')} ${kib(bytes.length)} (${kib(gzipSync(bytes).length)} gzipped)`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
