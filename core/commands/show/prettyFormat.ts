/**
 * The number formats of pg_probackup's `show` table (cli-behaviour.md §4.2). They are integer
 * arithmetic in pg_probackup (show.c `pretty_size`, `pretty_time_interval`); the same arithmetic is
 * kept here so that the table reads the same for the same catalog.
 */

/** Below 10 kB a size is printed in bytes; above, in the largest unit that keeps it under 20479 halves. */
const BYTES_LIMIT = 10 * 1024;
const HALVES_LIMIT = BYTES_LIMIT * 2 - 1;
const UNITS = ['kB', 'MB', 'GB'] as const;

/**
 * `pretty_size`: `0` for unknown or empty, `<n>B` below 10240, else the value in halves of a unit
 * (`size >> 9` is kB·2) rounded half up and shifted by 10 bits per unit up to TB.
 */
export function prettySize(sizeBytes: number): string {
  if (!(sizeBytes > 0)) return '0';
  if (sizeBytes < BYTES_LIMIT) return `${Math.trunc(sizeBytes)}B`;
  let halves = BigInt(Math.trunc(sizeBytes)) >> 9n;
  for (const unit of UNITS) {
    if (halves < BigInt(HALVES_LIMIT)) return `${(halves + 1n) / 2n}${unit}`;
    halves >>= 10n;
  }
  return `${(halves + 1n) / 2n}TB`;
}

const SECONDS_PER_DAY = 24 * 3600;

/**
 * `pretty_time_interval`: the two largest non-zero units of a duration given in seconds
 * (`<d>d:<h>h`, `<h>h:<m>m`, `<m>m:<s>s`), `<s>s` or `<s>s:<ms>ms` below a minute, `<ms>ms`
 * below a second, `0` for zero or negative.
 */
export function prettyTimeInterval(seconds: number): string {
  if (seconds <= 0) return '0';
  let whole = Math.trunc(seconds);
  const days = Math.trunc(whole / SECONDS_PER_DAY);
  whole %= SECONDS_PER_DAY;
  const hours = Math.trunc(whole / 3600);
  whole %= 3600;
  const minutes = Math.trunc(whole / 60);
  const secs = whole % 60;
  const milliseconds = Math.trunc((seconds - Math.trunc(seconds)) * 1000);
  if (days > 0) return `${days}d:${hours}h`;
  if (hours > 0) return `${hours}h:${minutes}m`;
  if (minutes > 0) return `${minutes}m:${secs}s`;
  if (secs > 0) return milliseconds > 0 ? `${secs}s:${milliseconds}ms` : `${secs}s`;
  return `${milliseconds}ms`;
}

/**
 * C's `%.2f`: rounds the exact binary value, and an exact tie (only possible for multiples of 1/8,
 * e.g. 0.125) goes to the even digit, where `Number.prototype.toFixed` would round up.
 */
export function formatFixed2(value: number): string {
  const isTie = Number.isInteger(value * 8) && !Number.isInteger(value * 4);
  if (!isTie) return value.toFixed(2);
  const lower = Math.floor(value * 100);
  const hundredths = lower % 2 === 0 ? lower : lower + 1;
  return (hundredths / 100).toFixed(2);
}

/**
 * `Zratio`: uncompressed-bytes / data-bytes computed in single precision as pg_probackup does
 * (a C `float`), `1.00` when either is unknown or zero.
 */
export function formatZratio(uncompressedBytes: number, dataBytes: number): string {
  if (!(uncompressedBytes > 0 && dataBytes > 0)) return formatFixed2(1);
  return formatFixed2(Math.fround(Math.fround(uncompressedBytes) / Math.fround(dataBytes)));
}
