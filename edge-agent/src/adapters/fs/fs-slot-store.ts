/**
 * The two model slots on disk:
 *
 *   slots/{a|b}/slot.json            marker: the bundle id and part names (written last)
 *   slots/{a|b}/manifest.envelope    the signed manifest envelope
 *   slots/{a|b}/parts/{name}         each part, uncompressed and verified
 *
 * `write` removes the marker first and writes it last, each file atomically,
 * so a slot cut off mid-write reads as empty and the agent never loads a mix
 * of two bundles. Part names were checked safe by the protocol (THREATS 16).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assertSafePartName } from '@fleet/protocol';
import { writeFileAtomic } from '@fleet/protocol/node';
import type { SlotStore } from '../../core/storage.ts';
import type { Slot } from '../../core/update-state.ts';

interface SlotMarker {
  bundleId: string;
  parts: string[];
}

export function createFsSlotStore(dataDir: string): SlotStore {
  const slotDir = (slot: Slot) => join(dataDir, 'slots', slot);
  const markerPath = (slot: Slot) => join(slotDir(slot), 'slot.json');

  async function readMarker(slot: Slot): Promise<SlotMarker | null> {
    try {
      return JSON.parse(await readFile(markerPath(slot), 'utf8')) as SlotMarker;
    } catch {
      return null;
    }
  }

  return {
    async write(slot, contents) {
      await rm(markerPath(slot), { force: true });
      await rm(join(slotDir(slot), 'parts'), { recursive: true, force: true });
      await mkdir(join(slotDir(slot), 'parts'), { recursive: true });
      await writeFileAtomic(join(slotDir(slot), 'manifest.envelope'), contents.manifestEnvelope);
      for (const [name, bytes] of contents.parts) {
        assertSafePartName(name);
        await writeFileAtomic(join(slotDir(slot), 'parts', name), bytes);
      }
      const marker: SlotMarker = { bundleId: contents.bundleId, parts: [...contents.parts.keys()] };
      await writeFileAtomic(markerPath(slot), JSON.stringify(marker));
    },
    async read(slot, bundleId) {
      const marker = await readMarker(slot);
      if (marker?.bundleId !== bundleId || !Array.isArray(marker.parts)) return null;
      try {
        const parts = new Map<string, Uint8Array>();
        for (const name of marker.parts) {
          assertSafePartName(name);
          parts.set(name, new Uint8Array(await readFile(join(slotDir(slot), 'parts', name))));
        }
        const manifestEnvelope = new Uint8Array(
          await readFile(join(slotDir(slot), 'manifest.envelope')),
        );
        return { bundleId, manifestEnvelope, parts };
      } catch {
        return null;
      }
    },
  };
}
