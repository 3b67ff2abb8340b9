// A plugin whose policy lacks most of the interface: the loader must name what is missing.
export function createPolicy() {
  return { name: 'incomplete', attach() {}, onInsert() {} };
}
