// A plugin that exists but imports a module that does not: broken, not "not found". (The
// specifier is a variable so that the type checker does not reject the file itself.)
const helper = './no-such-helper.ts';
export const { createPolicy } = await import(helper);
