#!/usr/bin/env node
// The `fleet` command. The repo runs its TypeScript through tsx (no build step
// yet), so this shim registers the loader and hands over to the CLI entry.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
