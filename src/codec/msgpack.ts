// msgpackr's options, set explicitly and once, for every record that is persisted or sent to
// another node (log entries, snapshot chunks, peer frames):
// - `copyBuffers: true`: a decoded byte string gets its own memory instead of a view into the
//   received buffer, so a kept value never keeps a whole batch alive;
// - `useRecords: false` and no `structures`: a record decodes without any shared table, as it
//   must on another node or after a restart;
// - `int64AsType: 'number'`: indexes, versions and times are safe integers, never bigints.
// Passing any option changes msgpackr's defaults (`mapsAsObjects` among them), hence all here.
import { Packr, Unpackr } from 'msgpackr';

const MSGPACK_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  sequential: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  largeBigIntToFloat: false,
  int64AsType: 'number',
  copyBuffers: true,
} as const;

export function newPackr(): Packr {
  return new Packr(MSGPACK_OPTIONS);
}

/** `viewsIntoInput`: byte strings stay views of the input, for a caller that copies them itself. */
export function newUnpackr(viewsIntoInput = false): Unpackr {
  return new Unpackr(viewsIntoInput ? { ...MSGPACK_OPTIONS, copyBuffers: false } : MSGPACK_OPTIONS);
}
