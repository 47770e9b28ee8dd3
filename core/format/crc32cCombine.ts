/**
 * CRC-32C of a concatenation from the CRCs of its parts: crc(A‖B) from crc(A), crc(B) and the
 * length of B, without the bytes (the method of zlib's crc32_combine, for the Castagnoli
 * polynomial). Appending B's length in zero bytes to A multiplies A's CRC by x^(8·|B|) modulo the
 * polynomial; the pre- and post-inversion of both CRCs cancel out, so final CRC values combine
 * directly. Lets workers checksum parts of a file in parallel.
 */

/** The Castagnoli polynomial 0x1EDC6F41, bit-reflected as CRC-32C computes it. */
const POLYNOMIAL_REFLECTED = 0x82f63b78;
/** x^0 in the reflected representation (the top bit is the lowest power). */
const X_POWER_0 = 0x80000000;

/** a(x) · b(x) modulo the polynomial, both reflected. */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  let bit = X_POWER_0;
  let multiple = b >>> 0;
  for (;;) {
    if ((a & bit) !== 0) {
      product ^= multiple;
      if ((a & (bit - 1)) === 0) break;
    }
    bit >>>= 1;
    multiple = multiple & 1 ? (multiple >>> 1) ^ POLYNOMIAL_REFLECTED : multiple >>> 1;
  }
  return product >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31. */
const X_POWER_TWO_POWERS: number[] = (() => {
  const powers: number[] = [];
  let power = X_POWER_0 >>> 1;
  for (let k = 0; k < 32; k++) {
    powers.push(power);
    power = multiplyModP(power, power);
  }
  return powers;
})();

/** x^(n · 2^k) modulo the polynomial. */
function xPowerModP(n: number, k: number): number {
  let power = X_POWER_0;
  let remaining = n;
  let exponent = k;
  while (remaining > 0) {
    if (remaining % 2 === 1) power = multiplyModP(X_POWER_TWO_POWERS[exponent & 31]!, power);
    remaining = Math.floor(remaining / 2);
    exponent++;
  }
  return power;
}

/** CRC-32C of A‖B from `crcA` = crc32c(A), `crcB` = crc32c(B) and `lengthB` = |B| in bytes. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  // Shifting by lengthB bytes is x^(8·lengthB) = x^(lengthB · 2^3).
  return (multiplyModP(xPowerModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0;
}
