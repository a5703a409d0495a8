// The `mnist` package ships no types; this declares the part Fleet uses.
declare module 'mnist' {
  interface MnistDigit {
    /** How many samples of this digit the package holds. */
    length: number;
    /** Sample `index`: 784 pixel values in [0, 1]. */
    get(index: number): number[];
  }
  const mnist: Record<number, MnistDigit>;
  export default mnist;
}
