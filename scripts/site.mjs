// Finishes the site that the server serves (target/site): the stylesheet, content-hashed names for the
// bundle (so browsers may cache it forever), hash.txt for the server to find them, the public files,
// and brotli and gzip copies made once here, at the highest effort, instead of on every request (gzip
// by Zopfli, which writes standard gzip some 5 % smaller than zlib's best).
// Usage: node scripts/site.mjs SITE_DIR   (SITE_DIR/pkg already holds wasm-bindgen's output)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const site = process.argv[2];
if (!site) throw new Error('usage: node scripts/site.mjs SITE_DIR');
const pkg = join(site, 'pkg');
const name = 'countersign';

// The stylesheet: every file in style/, in name order.
const css = readdirSync('style').filter((f) => f.endsWith('.css')).sort()
  .map((f) => readFileSync(join('style', f), 'utf8')).join('\n');
writeFileSync(join(pkg, `${name}.css`), css);

// countersign.js, countersign_bg.wasm, countersign.css → countersign.<hash>.<ext>
const hashes = [];
for (const [kind, file] of [['js', `${name}.js`], ['wasm', `${name}_bg.wasm`], ['css', `${name}.css`]]) {
  const hash = createHash('sha256').update(readFileSync(join(pkg, file))).digest('hex').slice(0, 16);
  renameSync(join(pkg, file), join(pkg, `${name}.${hash}.${kind}`));
  hashes.push(`${kind}: ${hash}`);
}
writeFileSync(join(site, 'hash.txt'), `${hashes.join('\n')}\n`);

cpSync('public', site, { recursive: true });

// Precompressed copies of every text-like file, where compression pays.
const compressible = /\.(js|wasm|css|svg|webmanifest|json)$/;
function* files(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}
for (const path of [...files(site)]) {
  if (!compressible.test(path)) continue;
  const raw = readFileSync(path);
  const br = brotliCompressSync(raw, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
  const gz = execFileSync('zopfli', ['-c', path], { maxBuffer: 64 << 20 });
  if (br.length < raw.length) writeFileSync(`${path}.br`, br);
  if (gz.length < raw.length) writeFileSync(`${path}.gz`, gz);
}
console.log(`site ready in ${site}: ${hashes.join(', ')}`);
