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
