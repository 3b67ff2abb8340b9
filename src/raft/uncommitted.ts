/**
 * The bytes a leader has appended and not yet seen committed, so that a leader cut off from
 * its followers refuses proposals instead of growing. Kept per appended batch as (last index,
 * running total): the bytes still uncommitted are the total less the running total of the
 * last batch wholly committed, O(1) amortized per batch.
 */
export class UncommittedBytes {
  readonly #limit: number;
  #batches: { readonly lastIndex: number; readonly total: number }[] = [];
  #appended = 0;
  #committed = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get pending(): number {
    return this.#appended - this.#committed;
  }

  /** Whether `bytes` more may be appended: always when nothing is pending, however large. */
  hasRoomFor(bytes: number): boolean {
    return this.pending === 0 || this.pending + bytes <= this.#limit;
  }

  appended(lastIndex: number, bytes: number): void {
    if (bytes === 0) return;
    this.#appended += bytes;
    this.#batches.push({ lastIndex, total: this.#appended });
  }

  committedTo(index: number): void {
    let done = 0;
    while (done < this.#batches.length && this.#batches[done].lastIndex <= index) {
      this.#committed = this.#batches[done].total;
      done++;
    }
    if (done > 0) this.#batches.splice(0, done);
  }

  reset(): void {
    this.#batches = [];
    this.#appended = 0;
    this.#committed = 0;
  }
}

export function totalBytes(data: readonly Uint8Array[]): number {
  let bytes = 0;
  for (const d of data) bytes += d.byteLength;
  return bytes;
}
