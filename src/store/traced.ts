import type { KeyValueStore } from './store.js';
import { withSpan } from '../observability/tracing.js';

const OPERATIONS = new Set([
  'get',
  'set',
  'setIfAbsent',
  'compareAndSet',
  'take',
  'delete',
  'touch',
  'addToIndex',
  'indexMembers',
  'removeFromIndex',
]);

/**
 * The store with a span per operation (`store.<operation>`, attribute `db.system.name`), used only
 * when an SDK records spans: untraced, the store is used as is. Keys are not recorded (a key is a
 * hash, but nothing is gained by exporting it). Every other member passes through unchanged.
 */
export function tracedStore<S extends KeyValueStore>(store: S): S {
  const system = store.kind;
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof prop !== 'string' || !OPERATIONS.has(prop) || typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        withSpan(`store.${prop}`, { 'db.system.name': system, 'db.operation.name': prop }, () =>
          Promise.resolve((value as (...a: unknown[]) => Promise<unknown>).apply(target, args)),
        );
    },
  });
}
