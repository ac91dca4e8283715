/**
 * `npx tsx bench/profile.ts <file.cpuprofile> [operations]`: where a process's CPU went, by component, from a
 * V8 CPU profile (the benchmark writes the host's with BENCH_HOST_CPU_PROF=<dir>). With the number of
 * operations the profile covered, also per operation. Self time is attributed to the code that ran it: the
 * package (or the project's folder) of the function on top of the stack; time in Node's own JavaScript or in
 * native functions (JSON, RegExp, Buffer, ...) goes to the nearest caller that is neither, with what it was in
 * what is left under those names ran with no such caller (socket and timer callbacks from the event loop).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Components, matched on the function's script URL in order; the first that matches wins. */
const COMPONENTS: [name: string, pattern: RegExp][] = [
  ['Tables SDK (@azure/data-tables)', /node_modules\/@azure\/data-tables\//],
  ['AMQP (Service Bus SDK, rhea)', /node_modules\/(@azure\/(service-bus|core-amqp)|rhea|rhea-promise)\//],
  [
    'Azure SDK pipeline (core-*, ts-http-runtime)',
    /node_modules\/(@azure\/(core-[a-z-]+|abort-controller|logger)|@typespec\/ts-http-runtime)\//,
  ],
  ['Functions library (@azure/functions)', /node_modules\/@azure\/functions\//],
  ['zod', /node_modules\/zod\//],
  ['local host (local/host)', /\/local\/host\//],
  ['service code (shared, functions)', /\/(shared|functions)\//],
  ['other packages', /node_modules\//],
  ['Node HTTP and sockets', /^node:(_http|http|https|net|_tls|tls|stream|internal\/(http|streams|stream_base|net))/],
  ['Node other', /^node:/],
];

function componentOf({ functionName, url }: ProfileNode['callFrame']): string | undefined {
  if (functionName === '(idle)') return undefined;
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'V8 and native (program)';
  return COMPONENTS.find(([, pattern]) => pattern.test(url))?.[0] ?? (url ? 'other' : 'native');
}

const [file, operationsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx bench/profile.ts <file.cpuprofile> [operations]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parents = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
const runtime = new Set(['native', 'Node HTTP and sockets', 'Node other']);

/** The sample's component; runtime time is charged to the nearest caller outside the runtime. */
function charge(id: number): string | undefined {
  const own = componentOf(nodes.get(id)!.callFrame);
  if (!own || !runtime.has(own)) return own;
  for (let up = parents.get(id); up !== undefined; up = parents.get(up)) {
    const caller = componentOf(nodes.get(up)!.callFrame);
    if (caller && !runtime.has(caller) && caller !== 'V8 and native (program)') return caller;
  }
  return own;
}

const ms = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const component = charge(id);
  if (component) ms.set(component, (ms.get(component) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
});
const busy = [...ms.values()].reduce((a, b) => a + b, 0);
const operations = operationsArg ? Number(operationsArg) : undefined;
console.log(`busy ${Math.round(busy)} ms${operations ? `, ${(busy / operations).toFixed(2)} ms per operation` : ''}`);
for (const [name, value] of [...ms].sort((a, b) => b[1] - a[1])) {
  const share = `${((value / busy) * 100).toFixed(1)}%`.padStart(6);
  const perOp = operations ? `  ${(value / operations).toFixed(3)} ms/op` : '';
  console.log(`  ${share}  ${name}${perOp}`);
}
