// The worker resolves package.json `main` with globby; this covers the syntax entry-point globs use
// (`*`, `?`, `**`, `[abc]`, `{a,b}`) without another dependency (Node 20 has no fs.glob).
import fs from 'node:fs';
import path from 'node:path';

const magic = /[*?[\]{}]/;

function segmentRegex(segment: string): RegExp {
  let source = '';
  let braces = 0;
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 1);
      if (end < 0) source += '\\[';
      else {
        const body = segment
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      }
    } else if (c === '{') {
      braces++;
      source += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      source += ')';
    } else if (c === ',' && braces > 0) source += '|';
    else source += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** Files under `cwd` matching `pattern`, as sorted `/`-separated relative paths. */
export function glob(pattern: string, cwd: string): string[] {
  const normalized = pattern.replace(/\\/g, '/').replace(/^\.\//, '');
  if (!magic.test(normalized)) {
    return fs.statSync(path.join(cwd, normalized), { throwIfNoEntry: false })?.isFile() ? [normalized] : [];
  }
  const segments = normalized.split('/').filter((s) => s !== '');
  const results = new Set<string>();

  const walk = (dir: string, rel: string, index: number): void => {
    const segment = segments[index];
    if (segment === undefined) return;
    const last = index === segments.length - 1;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (segment === '**') {
      if (!last) walk(dir, rel, index + 1);
      for (const e of entries) {
        if (last && e.isFile() && !e.name.startsWith('.')) results.add(rel + e.name);
        if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') {
          walk(path.join(dir, e.name), rel + e.name + '/', index);
        }
      }
      return;
    }
    const regex = magic.test(segment) ? segmentRegex(segment) : undefined;
    for (const e of entries) {
      if (regex ? !regex.test(e.name) || (e.name.startsWith('.') && !segment.startsWith('.')) : e.name !== segment) {
        continue;
      }
      if (last) {
        if (e.isFile()) results.add(rel + e.name);
      } else if (e.isDirectory()) {
        walk(path.join(dir, e.name), rel + e.name + '/', index + 1);
      }
    }
  };

  walk(cwd, '', 0);
  return [...results].sort();
}
