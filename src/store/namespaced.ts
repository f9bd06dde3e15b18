import type { ChangeFeed, KeyValueStore } from './store.js';

/**
 * One frontend's view of the shared store: every key and index carries the namespace, so a
 * session, login transaction or logout index of one frontend does not exist for another. Each
 * operation still touches one key, so Redis Cluster routing is unchanged.
 */
export function namespacedStore(store: KeyValueStore, namespace: string): KeyValueStore {
  if (!namespace) return store;
  const k = (key: string) => `${namespace}${key}`;
  const base = store.changes;
  const changes: ChangeFeed | undefined = base && {
    get live() {
      return base.live;
    },
    get epoch() {
      return base.epoch;
    },
    publish: (key) => base.publish(k(key)),
    onChange: (listener) =>
      base.onChange((key) => {
        if (key.startsWith(namespace)) listener(key.slice(namespace.length));
      }),
    onReset: (listener) => base.onReset(listener),
  };
  const view: KeyValueStore = {
    kind: store.kind,
    ...(changes ? { changes } : {}),
    get: (key) => store.get(k(key)),
    set: (key, value, ttlMs) => store.set(k(key), value, ttlMs),
    setIfAbsent: (key, value, ttlMs) => store.setIfAbsent(k(key), value, ttlMs),
    compareAndSet: (key, expected, next, ttlMs) => store.compareAndSet(k(key), expected, next, ttlMs),
    take: (key) => store.take(k(key)),
    delete: (key) => store.delete(k(key)),
    touch: (key, ttlMs) => store.touch(k(key), ttlMs),
    // Index members are keys of this view: stored as given, returned as given.
    addToIndex: (index, member, ttlMs) => store.addToIndex(k(index), member, ttlMs),
    indexMembers: (index) => store.indexMembers(k(index)),
    removeFromIndex: (index, member) => store.removeFromIndex(k(index), member),
    ping: () => store.ping(),
    // The shared store is closed by its owner, not by one frontend's view.
    close: async () => undefined,
  };
  if (store.setDurable) {
    const setDurable = store.setDurable.bind(store);
    view.setDurable = (key, value, ttlMs) => setDurable(k(key), value, ttlMs);
  }
  if (store.compareAndSetDurable) {
    const casDurable = store.compareAndSetDurable.bind(store);
    view.compareAndSetDurable = (key, expected, next, ttlMs) => casDurable(k(key), expected, next, ttlMs);
  }
  return view;
}
