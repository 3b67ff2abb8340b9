#!/usr/bin/env node
// The `raftcache` command. Installed as a dependency it runs the build (`dist/`, made when the
// package is packed): Node strips no types under node_modules. In the repository Node runs the
// TypeScript entry as it is.
const installed = import.meta.url.includes('/node_modules/');
await import(installed ? '../dist/src/cli/main.js' : '../src/cli/main.ts');
