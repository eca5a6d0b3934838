// Bundle GraphiQL into ../static/graphiql.{js,css}: `npm ci && npm run build` (or `make graphiql`).
// Everything the page loads is in those two files; nothing is fetched from another origin.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

await build({
  absWorkingDir: here,
  entryPoints: { graphiql: 'index.jsx' },
  outdir: '../static',
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  // Fonts and images that the CSS references are inlined, so the stylesheet needs no other file.
  loader: { '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'info',
});
