// Builds the playground into one JS and one CSS file (nothing fetched at run time: fonts
// and images are data: URIs), for chalicelib/graphql/playground.py to inline into GET
// /graphql's page. Run by `make install` (npm run build --prefix playground).
//
//   node build.mjs                      -> playground/dist/
//   node build.mjs --out <directory>    -> <directory> (e.g. to ship them in the package)
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf('--out');
const outdir = path.resolve(outIndex > 0 ? process.argv[outIndex + 1] : path.join(here, 'dist'));

// Built beside the destination, then moved in: a server reading the directory never sees
// half a bundle.
const staging = `${outdir}.building`;
await rm(staging, { recursive: true, force: true });
await mkdir(staging, { recursive: true });

try {
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: { playground: 'src/main.jsx' },
    outdir: staging,
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.png': 'dataurl', '.svg': 'dataurl' },
    legalComments: 'eof',
    logLevel: 'warning',
  });

  const js = await readFile(path.join(staging, 'playground.js'), 'utf8');
  const css = await readFile(path.join(staging, 'playground.css'), 'utf8');
  // The page inlines both: they must not close their own element, nor load anything.
  if (js.toLowerCase().includes('</script')) throw new Error('playground.js contains </script');
  if (css.toLowerCase().includes('</style')) throw new Error('playground.css contains </style');
  const remote = css.match(/@import|url\(\s*['"]?(https?:)?\/\//i);
  if (remote) throw new Error(`playground.css loads from elsewhere: ${remote[0]}`);
  const versions = {};
  const manifest = JSON.parse(await readFile(path.join(here, 'package.json'), 'utf8'));
  for (const name of Object.keys(manifest.dependencies)) {
    const pkg = JSON.parse(await readFile(path.join(here, 'node_modules', name, 'package.json'), 'utf8'));
    versions[name] = pkg.version;
  }
  await writeFile(
    path.join(staging, 'versions.json'),
    `${JSON.stringify({ ...versions, bytes: { js: Buffer.byteLength(js), css: Buffer.byteLength(css) } }, null, 2)}\n`,
  );
} catch (error) {
  await rm(staging, { recursive: true, force: true });
  throw error;
}

await rm(outdir, { recursive: true, force: true });
await rename(staging, outdir);
