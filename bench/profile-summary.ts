/**
 * Summarise a V8 .cpuprofile from a profiling run of the bench driver, e.g.
 *
 *   BENCH_ONLY=bff-memory BENCH_CONNECTIONS=16 node --cpu-prof --cpu-prof-dir=/tmp/prof dist/bench/run.js
 *   node dist/bench/profile-summary.js /tmp/prof/CPU.*.cpuprofile [top=25] [filter=substring]
 *
 * Prints the busy time (all samples but idle/GC/program), self time by function, inclusive time by
 * function (each function counted once per sample, so recursion does not double count) and self
 * time by module (a package under node_modules, a file of this project, or Node internals).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function frameKey(f: CallFrame): string {
  const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + '/dist/'.length);
  return url.replace(/^file:\/\//, '');
}

function moduleOf(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  if (f.url.startsWith('node:')) return 'node internals';
  const nm = f.url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = f.url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
  }
  return shortUrl(f.url);
}

function table(entries: [string, number][], total: number, top: number): string {
  return entries
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(
      ([k, us]) =>
        `${(us / 1000).toFixed(0).padStart(7)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${k}`,
    )
    .join('\n');
}

function main(): void {
  const [file, topArg, filter] = process.argv.slice(2);
  if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top] [filter]');
  const top = Number(topArg ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const modules = new Map<string, number>();
  let busy = 0;
  let all = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    all += dt;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') return;
    busy += dt;
    const key = frameKey(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const mod = moduleOf(node.callFrame);
    modules.set(mod, (modules.get(mod) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n) break;
      const k = frameKey(n.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  const pick = (m: Map<string, number>) => [...m].filter(([k]) => !filter || k.includes(filter));
  console.log(
    `profile ${file}: ${(all / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (not idle/program)`,
  );
  console.log(`\n== self time (of busy) ==\n${table(pick(self), busy, top)}`);
  console.log(`\n== inclusive time (of busy) ==\n${table(pick(inclusive), busy, top)}`);
  console.log(`\n== self time by module ==\n${table([...modules], busy, top)}`);
}

main();
