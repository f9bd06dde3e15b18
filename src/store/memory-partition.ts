import { BffError } from '../errors.js';
import type { Clock } from './store.js';

export interface MemoryPartitionOptions {
  /** Upper bound on values plus indexes held at once. */
  maxEntries: number;
  /**
   * At the bound: `evict` the entry that expires soonest (sessions, transactions, caches), or
   * `refuse` the write with BFF_STORE_UNAVAILABLE (replay caches and locks, where forgetting a live
   * entry would let a replay through or two refreshers in: failing closed is the safe side).
   */
  whenFull: 'evict' | 'refuse';
  clock: Clock;
  /** Named in the refusal, so an operator sees which bound was reached. */
  name: string;
}

interface ValueEntry {
  value: string;
  expiresAt: number;
}

interface IndexEntry {
  members: Set<string>;
  expiresAt: number;
}

type Entry = ValueEntry | IndexEntry;

interface HeapNode {
  expiresAt: number;
  isIndex: boolean;
  key: string;
  entry: Entry;
}

/** Caps the work of one sweep so a mass expiry cannot block the event loop; reads still expire. */
const SWEEP_BATCH = 10_000;

export function checkTtl(ttlMs: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('ttlMs must be a finite number > 0');
}

/**
 * One bounded part of the in-process store (see MemoryStore, which routes keys to partitions so a
 * flood of one kind of record never evicts another kind). Values and indexes live in separate
 * maps, exactly as in RedisStore where they live under separate key namespaces, so a key and an
 * index with the same name never collide.
 *
 * Expiry is enforced on every read against the injected clock; the periodic sweep only reclaims
 * memory held by entries nobody reads again.
 *
 * Bound: when a new entry would exceed `maxEntries`, already-expired entries are reclaimed first;
 * then, with `whenFull: 'evict'`, the entry that expires soonest is evicted. Why soonest-expiry
 * rather than LRU:
 * - The cheapest records to create without authenticating are short-lived login transactions
 *   (unauthenticated /login). A flood of them evicts other short-lived records and never a
 *   long-lived session; under LRU the same flood would push out every session idle for longer
 *   than the flood took.
 * - The evicted entry is the one that loses the least remaining lifetime.
 * - Reads stay a single Map lookup: LRU would reorder the map on every read of the hot path.
 * The order is kept in a binary min-heap with lazy deletion (stale nodes are skipped on pop and
 * the heap is rebuilt when stale nodes outnumber live ones), so set/touch are O(log n) and
 * eviction and the sweep are O(log n) per removed entry.
 */
export class MemoryPartition {
  readonly #values = new Map<string, ValueEntry>();
  readonly #indexes = new Map<string, IndexEntry>();
  #heap: HeapNode[] = [];
  readonly #maxEntries: number;
  readonly #refuse: boolean;
  readonly #name: string;
  readonly #clock: Clock;

  constructor(options: MemoryPartitionOptions) {
    const maxEntries = options.maxEntries;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError('maxEntries must be an integer >= 1');
    }
    this.#maxEntries = maxEntries;
    this.#refuse = options.whenFull === 'refuse';
    this.#name = options.name;
    this.#clock = options.clock;
  }

  /** Entries currently held (values plus indexes), including expired ones not yet reclaimed. */
  get size(): number {
    return this.#values.size + this.#indexes.size;
  }

  get(key: string): string | undefined {
    return this.#live(key)?.value;
  }

  set(key: string, value: string, ttlMs: number): void {
    checkTtl(ttlMs);
    this.#put(key, value, ttlMs);
  }

  setIfAbsent(key: string, value: string, ttlMs: number): boolean {
    checkTtl(ttlMs);
    if (this.#live(key) !== undefined) return false;
    this.#put(key, value, ttlMs);
    return true;
  }

  compareAndSet(key: string, expected: string, next: string, ttlMs: number): boolean {
    checkTtl(ttlMs);
    if (this.#live(key)?.value !== expected) return false;
    this.#put(key, next, ttlMs);
    return true;
  }

  take(key: string): string | undefined {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    this.#values.delete(key);
    return entry.value;
  }

  delete(key: string): void {
    this.#values.delete(key);
  }

  touch(key: string, ttlMs: number): boolean {
    checkTtl(ttlMs);
    const entry = this.#live(key);
    if (entry === undefined) return false;
    entry.expiresAt = this.#clock() + ttlMs;
    this.#push(key, entry, false);
    return true;
  }

  addToIndex(index: string, member: string, ttlMs: number): void {
    checkTtl(ttlMs);
    const expiresAt = this.#clock() + ttlMs;
    let entry = this.#liveIndex(index);
    if (entry === undefined) {
      this.#makeRoom();
      entry = { members: new Set(), expiresAt };
      this.#indexes.set(index, entry);
    }
    entry.members.add(member);
    // Like PEXPIRE in RedisStore: every add sets the index lifetime, longer or shorter.
    entry.expiresAt = expiresAt;
    this.#push(index, entry, true);
  }

  indexMembers(index: string): string[] {
    const entry = this.#liveIndex(index);
    return entry === undefined ? [] : [...entry.members];
  }

  removeFromIndex(index: string, member: string): void {
    const entry = this.#liveIndex(index);
    if (entry === undefined) return;
    entry.members.delete(member);
    // An empty set does not exist in Redis either; dropping it frees its slot in the bound.
    if (entry.members.size === 0) this.#indexes.delete(index);
  }

  clear(): void {
    this.#values.clear();
    this.#indexes.clear();
    this.#heap = [];
  }

  /** Reclaims expired entries (called by the timer; public so callers can force it). */
  sweep(): void {
    const now = this.#clock();
    for (let removed = 0; removed < SWEEP_BATCH;) {
      const top = this.#heap[0];
      if (top === undefined || top.expiresAt > now) break;
      this.#pop();
      if (this.#isCurrent(top)) {
        this.#remove(top);
        removed++;
      }
    }
    this.#compactIfStale();
  }

  #live(key: string): ValueEntry | undefined {
    const entry = this.#values.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#clock()) {
      this.#values.delete(key);
      return undefined;
    }
    return entry;
  }

  #liveIndex(index: string): IndexEntry | undefined {
    const entry = this.#indexes.get(index);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#clock()) {
      this.#indexes.delete(index);
      return undefined;
    }
    return entry;
  }

  #put(key: string, value: string, ttlMs: number): void {
    if (!this.#values.has(key)) this.#makeRoom();
    // A fresh object: heap nodes of the previous entry become stale instead of pointing here.
    const entry: ValueEntry = { value, expiresAt: this.#clock() + ttlMs };
    this.#values.set(key, entry);
    this.#push(key, entry, false);
  }

  /** Reclaims expired entries, then evicts (or refuses, see `whenFull`) until one more entry fits. */
  #makeRoom(): void {
    if (this.size >= this.#maxEntries) this.sweep();
    if (this.#refuse && this.size >= this.#maxEntries) {
      throw new BffError('BFF_STORE_UNAVAILABLE', {
        reason: 'memory_bound',
        detail: `the in-memory ${this.#name} store is full`,
      });
    }
    while (this.size >= this.#maxEntries) {
      const top = this.#pop();
      if (top === undefined) {
        // Unreachable while every entry has a heap node; kept so a bug degrades to FIFO eviction
        // rather than to an unbounded map.
        const first = this.#values.keys().next();
        if (!first.done) this.#values.delete(first.value);
        else {
          const firstIndex = this.#indexes.keys().next();
          if (firstIndex.done) return;
          this.#indexes.delete(firstIndex.value);
        }
        continue;
      }
      if (this.#isCurrent(top)) this.#remove(top);
    }
  }

  #isCurrent(node: HeapNode): boolean {
    const map = node.isIndex ? this.#indexes : this.#values;
    return map.get(node.key) === node.entry && node.entry.expiresAt === node.expiresAt;
  }

  #remove(node: HeapNode): void {
    if (node.isIndex) this.#indexes.delete(node.key);
    else this.#values.delete(node.key);
  }

  #compactIfStale(): void {
    if (this.#heap.length <= 2 * this.size + 64) return;
    const live: HeapNode[] = [];
    for (const [key, entry] of this.#values)
      live.push({ expiresAt: entry.expiresAt, isIndex: false, key, entry });
    for (const [key, entry] of this.#indexes)
      live.push({ expiresAt: entry.expiresAt, isIndex: true, key, entry });
    live.sort((a, b) => a.expiresAt - b.expiresAt); // a sorted array is a valid min-heap
    this.#heap = live;
  }

  #push(key: string, entry: Entry, isIndex: boolean): void {
    const heap = this.#heap;
    const node: HeapNode = { expiresAt: entry.expiresAt, isIndex, key, entry };
    let i = heap.push(node) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.expiresAt <= node.expiresAt) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = node;
    this.#compactIfStale();
  }

  #pop(): HeapNode | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.expiresAt < heap[l]!.expiresAt ? r : l;
      const child = heap[c]!;
      if (child.expiresAt >= last.expiresAt) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}
