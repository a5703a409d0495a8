/**
 * A rollout's target: which devices it goes to, from the operator's text or
 * from a structured object, and whether one device matches.
 *
 * Text syntax (`fleet rollout create --target ...`): comma-separated terms,
 *
 *   tag:KEY=VALUE     the device has this tag          (all tag terms must hold)
 *   hardware:CLASS    its hardware class is this one   (any of the hardware terms)
 *   id:DEVICE_ID      it is this device                (any of the id terms)
 *   all               every device; must stand alone
 *
 * Kinds combine with AND, e.g. `tag:site=berlin,hardware:rpi4,hardware:rpi5`
 * is "in Berlin, and an rpi4 or an rpi5". Spaces around terms are ignored.
 *
 * A selector with no criterion is refused: "no filter" must never silently mean
 * the whole fleet, so that rollout says `all` (`{ all: true }`). For the same
 * reason `matchesSelector` matches nothing with an empty selector.
 */
import { deviceIdSchema, hardwareClassSchema, tagKeySchema, tagValueSchema } from '@fleet/protocol';
import { controlPlaneError } from '../errors.ts';
import type { TargetSelector } from './rollout-types.ts';

/** Caps that keep one selector small enough to store and to evaluate per device. */
export const MAX_SELECTOR_TAGS = 32;
export const MAX_SELECTOR_HARDWARE = 32;
export const MAX_SELECTOR_DEVICE_IDS = 10_000;

/** What the matcher needs to know about a device. */
export interface SelectableDevice {
  id: string;
  hardware: string;
  tags: Record<string, string>;
}

const SELECTOR_FIELDS = new Set(['all', 'tags', 'hardware', 'deviceIds']);

function invalid(message: string): Error {
  return controlPlaneError('INVALID_REQUEST', `target: ${message}`);
}

/**
 * Parses the text syntax above into a checked selector.
 *
 * @example
 *   parseSelector('tag:site=berlin,hardware:rpi4')
 *   // { tags: { site: 'berlin' }, hardware: ['rpi4'] }
 */
export function parseSelector(text: string): TargetSelector {
  const terms = text.split(',').map((term) => term.trim());
  if (terms.length === 1 && terms[0] === 'all') return { all: true };
  const tags: Record<string, string> = {};
  const hardware: string[] = [];
  const deviceIds: string[] = [];
  for (const term of terms) {
    if (term === '') throw invalid(`empty term in '${text}'`);
    if (term === 'all') throw invalid(`'all' must stand alone, not beside other terms`);
    const colon = term.indexOf(':');
    const kind = colon < 0 ? term : term.slice(0, colon);
    const value = colon < 0 ? '' : term.slice(colon + 1);
    if (kind === 'tag') addTag(tags, value);
    else if (kind === 'hardware') hardware.push(value);
    else if (kind === 'id') deviceIds.push(value);
    else throw invalid(`'${term}' is not tag:KEY=VALUE, hardware:CLASS, id:DEVICE_ID or all`);
  }
  return buildSelector({
    ...(Object.keys(tags).length > 0 ? { tags } : {}),
    ...(hardware.length > 0 ? { hardware } : {}),
    ...(deviceIds.length > 0 ? { deviceIds } : {}),
  });
}

function addTag(tags: Record<string, string>, pair: string): void {
  const at = pair.indexOf('=');
  if (at < 1) throw invalid(`'tag:${pair}' is not tag:KEY=VALUE`);
  const key = pair.slice(0, at);
  const value = pair.slice(at + 1);
  // Checked here, before it becomes a property name (`__proto__` must never be one).
  if (!tagKeySchema.safeParse(key).success) throw invalid(`'${key}' is not a valid tag key`);
  if (Object.hasOwn(tags, key) && tags[key] !== value) {
    throw invalid(`tag ${key} is given twice (${tags[key]}, ${value}); no device has both`);
  }
  tags[key] = value;
}

/**
 * Checks a selector given as text (see `parseSelector`) or as an object (the
 * JSON API), and returns it normalised: lists de-duplicated and sorted, empty
 * fields dropped. Throws INVALID_REQUEST naming the bad part; an empty
 * selector, `all` beside another field, and values that are not valid tags,
 * hardware classes or device ids are refused.
 */
export function buildSelector(input: unknown): TargetSelector {
  if (typeof input === 'string') return parseSelector(input);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('expected a selector string or an object with tags, hardware, deviceIds or all');
  }
  const fields = input as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!SELECTOR_FIELDS.has(key)) throw invalid(`unknown field ${key}`);
  }
  if (fields.all !== undefined) return checkAll(fields);
  const tags = checkTags(fields.tags);
  const hardware = checkList(
    fields.hardware,
    'hardware',
    MAX_SELECTOR_HARDWARE,
    (value) => hardwareClassSchema.safeParse(value).success,
  );
  const deviceIds = checkList(
    fields.deviceIds,
    'deviceIds',
    MAX_SELECTOR_DEVICE_IDS,
    (value) => deviceIdSchema.safeParse(value).success,
  );
  const selector: TargetSelector = {
    ...(tags ? { tags } : {}),
    ...(hardware ? { hardware } : {}),
    ...(deviceIds ? { deviceIds } : {}),
  };
  if (Object.keys(selector).length === 0) {
    throw invalid('an empty selector is refused; target the whole fleet with all');
  }
  return selector;
}

function checkAll(fields: Record<string, unknown>): TargetSelector {
  if (fields.all !== true) throw invalid('all must be true when given');
  if (Object.keys(fields).length > 1) {
    throw invalid('all must stand alone, not beside tags, hardware or deviceIds');
  }
  return { all: true };
}

function checkTags(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('tags must be an object of KEY: VALUE');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_SELECTOR_TAGS) {
    throw invalid(`at most ${MAX_SELECTOR_TAGS} tags, got ${entries.length}`);
  }
  for (const [key, tagValue] of entries) {
    if (!tagKeySchema.safeParse(key).success) throw invalid(`'${key}' is not a valid tag key`);
    if (!tagValueSchema.safeParse(tagValue).success) {
      throw invalid(`tag ${key}: '${String(tagValue)}' is not a valid tag value`);
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length > 0 ? (Object.fromEntries(entries) as Record<string, string>) : undefined;
}

function checkList(
  value: unknown,
  field: string,
  max: number,
  isValid: (item: unknown) => boolean,
): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw invalid(`${field} must be a list`);
  if (value.length === 0) throw invalid(`${field} is an empty list; it would match no device`);
  if (value.length > max) throw invalid(`${field}: at most ${max} entries, got ${value.length}`);
  for (const item of value) {
    if (!isValid(item)) throw invalid(`${field}: '${String(item)}' is not valid`);
  }
  return [...new Set(value as string[])].sort();
}

/**
 * True when the device is targeted: `all`, or every given criterion holds
 * (all tags present with their values, hardware one of the list, id one of the
 * list). An empty selector matches nothing.
 */
export function matchesSelector(device: SelectableDevice, selector: TargetSelector): boolean {
  if (selector.all === true) return true;
  const { tags, hardware, deviceIds } = selector;
  if (tags === undefined && hardware === undefined && deviceIds === undefined) return false;
  const hasTag = ([key, value]: [string, string]) =>
    Object.hasOwn(device.tags, key) && device.tags[key] === value;
  if (tags && !Object.entries(tags).every(hasTag)) {
    return false;
  }
  if (hardware && !hardware.includes(device.hardware)) return false;
  if (deviceIds && !deviceIds.includes(device.id)) return false;
  return true;
}

/**
 * The selector in the text syntax `parseSelector` reads (for reasons and
 * listings): `parseSelector(formatSelector(s))` gives back a built `s`.
 */
export function formatSelector(selector: TargetSelector): string {
  if (selector.all === true) return 'all';
  return [
    ...Object.entries(selector.tags ?? {}).map(([key, value]) => `tag:${key}=${value}`),
    ...(selector.hardware ?? []).map((hardware) => `hardware:${hardware}`),
    ...(selector.deviceIds ?? []).map((id) => `id:${id}`),
  ].join(',');
}
