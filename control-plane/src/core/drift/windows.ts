/**
 * Tumbling windows of `windowMs`, aligned to the epoch, half-open on the
 * left: (end - windowMs, end]. A flush belongs to the window holding its
 * `window.end`, so a flush that ends on a boundary falls in the window that
 * ends there. A window is scored once `graceMs` has passed after its end;
 * a flush for a window scored already is late.
 */

/** The window that holds `flushEndMs`. */
export function windowOf(flushEndMs: number, windowMs: number): { startMs: number; endMs: number } {
  const endMs = Math.ceil(flushEndMs / windowMs) * windowMs;
  return { startMs: endMs - windowMs, endMs };
}
