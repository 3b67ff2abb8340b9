// A plugin module that forgot its entry point: the loader must say so.
export const policy = { name: 'nothing' };
