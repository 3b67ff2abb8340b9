#!/usr/bin/env node
// The `raftcache` command: Node runs the TypeScript entry as it is (type stripping).
import '../src/cli/main.ts';
