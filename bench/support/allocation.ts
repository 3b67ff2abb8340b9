import v8 from 'node:v8';

/**
 * Heap bytes allocated while `run` executes: the growth of the used heap plus everything the
 * garbage collector freed meanwhile (from V8's GC profiler). Allocation, not retention, is
 * what costs a hot path its time.
 */
export function measureAllocation<T>(run: () => T): { result: T; allocatedBytes: number } {
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const result = run();
  const after = v8.getHeapStatistics().used_heap_size;
  const profile = profiler.stop();
  let freed = 0;
  for (const gc of profile?.statistics ?? []) {
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  }
  return { result, allocatedBytes: Math.max(0, after - before + freed) };
}
