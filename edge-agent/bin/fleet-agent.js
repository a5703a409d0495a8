#!/usr/bin/env node
// The `fleet-agent` daemon. The repo runs its TypeScript through tsx (no build
// step yet), so this shim registers the loader and hands over to main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
