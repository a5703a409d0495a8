/**
 * Training-time augmentation for square grayscale images: each image moves by
 * a random whole-pixel shift in [-maxShift, maxShift] on both axes, with the
 * uncovered border left at 0. It gives the MNIST 2NN (no convolutions, so no
 * built-in shift tolerance) more varied digits from the same 8,000 samples.
 */
export function shiftImages(
  features: Float32Array,
  side: number,
  maxShift: number,
  next: () => number,
): Float32Array {
  const pixels = side * side;
  const out = new Float32Array(features.length);
  const span = 2 * maxShift + 1;
  for (let offset = 0; offset < features.length; offset += pixels) {
    const dx = (next() % span) - maxShift;
    const dy = (next() % span) - maxShift;
    for (let y = Math.max(0, dy); y < Math.min(side, side + dy); y++) {
      for (let x = Math.max(0, dx); x < Math.min(side, side + dx); x++) {
        out[offset + y * side + x] = features[offset + (y - dy) * side + (x - dx)]!;
      }
    }
  }
  return out;
}
