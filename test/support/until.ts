/** Polls `check` every 10 ms until it gives a value; rejects after `ms`. */
export function until<T>(check: () => T | undefined, ms = 3_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      const value = check();
      if (value !== undefined) resolve(value);
      else if (Date.now() - started > ms) reject(new Error(`not within ${ms} ms`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

/**
 * `until` for a check that must ask over the network: calls `attempt` (a rejection counts as
 * not yet) every `everyMs` until it gives a value; rejects after `ms`, naming the last error.
 */
export async function eventually<T>(
  attempt: () => Promise<T | undefined>,
  ms = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = performance.now() + ms;
  let lastError: unknown;
  for (;;) {
    const value = await attempt().catch((error: unknown) => {
      lastError = error;
      return undefined;
    });
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`not within ${ms} ms${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
