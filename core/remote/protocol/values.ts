/**
 * The payload encoding of the agent protocol: a small self-describing binary format for the plain
 * data Storage operations and page jobs exchange (numbers, LSNs as bigint, strings, raw bytes,
 * block lists, arrays, objects). Bytes travel as they are (no base64), so a page range's records
 * cost their own size on the wire. Integers are little-endian.
 */
export type WireValue =
  | undefined
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Uint8Array
  | Uint32Array
  | WireValue[]
  | { [key: string]: WireValue };

const TAG_UNDEFINED = 0;
const TAG_NULL = 1;
const TAG_FALSE = 2;
const TAG_TRUE = 3;
const TAG_INT32 = 4;
const TAG_FLOAT64 = 5;
const TAG_BIGINT = 6;
const TAG_STRING = 7;
const TAG_BYTES = 8;
const TAG_UINT32_ARRAY = 9;
const TAG_ARRAY = 10;
const TAG_OBJECT = 11;

/** Collects the encoded pieces; large byte payloads are referenced, not copied, until the end. */
class Writer {
  private readonly parts: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(256);
  private used = 0;
  private total = 0;

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.scratch.length) return;
    this.flushScratch();
    if (bytes > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(bytes, 256));
  }

  private flushScratch(): void {
    if (this.used === 0) return;
    this.parts.push(Buffer.from(this.scratch.subarray(0, this.used)));
    this.used = 0;
  }

  u8(value: number): void {
    this.reserve(1);
    this.scratch[this.used++] = value;
    this.total += 1;
  }

  u32(value: number): void {
    this.reserve(4);
    this.scratch.writeUInt32LE(value, this.used);
    this.used += 4;
    this.total += 4;
  }

  i32(value: number): void {
    this.reserve(4);
    this.scratch.writeInt32LE(value, this.used);
    this.used += 4;
    this.total += 4;
  }

  f64(value: number): void {
    this.reserve(8);
    this.scratch.writeDoubleLE(value, this.used);
    this.used += 8;
    this.total += 8;
  }

  bytes(value: Uint8Array): void {
    if (value.length <= 64) {
      this.reserve(value.length);
      this.scratch.set(value, this.used);
      this.used += value.length;
    } else {
      this.flushScratch();
      this.parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    }
    this.total += value.length;
  }

  finish(): Buffer {
    this.flushScratch();
    return Buffer.concat(this.parts, this.total);
  }

  /** The encoded pieces without joining them; large byte values are the caller's own buffers. */
  finishParts(): { parts: Buffer[]; byteLength: number } {
    this.flushScratch();
    return { parts: this.parts, byteLength: this.total };
  }
}

function encodeInto(writer: Writer, value: WireValue): void {
  if (value === undefined) return writer.u8(TAG_UNDEFINED);
  if (value === null) return writer.u8(TAG_NULL);
  if (value === false) return writer.u8(TAG_FALSE);
  if (value === true) return writer.u8(TAG_TRUE);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff) {
      writer.u8(TAG_INT32);
      writer.i32(value);
    } else {
      writer.u8(TAG_FLOAT64);
      writer.f64(value);
    }
    return;
  }
  if (typeof value === 'bigint') {
    const text = Buffer.from(value.toString(10), 'latin1');
    writer.u8(TAG_BIGINT);
    writer.u32(text.length);
    writer.bytes(text);
    return;
  }
  if (typeof value === 'string') {
    const text = Buffer.from(value, 'utf8');
    writer.u8(TAG_STRING);
    writer.u32(text.length);
    writer.bytes(text);
    return;
  }
  if (value instanceof Uint32Array) {
    writer.u8(TAG_UINT32_ARRAY);
    writer.u32(value.length);
    const bytes = Buffer.allocUnsafe(value.length * 4);
    for (let i = 0; i < value.length; i++) bytes.writeUInt32LE(value[i]!, i * 4);
    writer.bytes(bytes);
    return;
  }
  if (value instanceof Uint8Array) {
    writer.u8(TAG_BYTES);
    writer.u32(value.length);
    writer.bytes(value);
    return;
  }
  if (Array.isArray(value)) {
    writer.u8(TAG_ARRAY);
    writer.u32(value.length);
    for (const item of value) encodeInto(writer, item);
    return;
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  writer.u8(TAG_OBJECT);
  writer.u32(entries.length);
  for (const [key, item] of entries) {
    const name = Buffer.from(key, 'utf8');
    writer.u32(name.length);
    writer.bytes(name);
    encodeInto(writer, item);
  }
}

export function encodeValue(value: WireValue): Buffer {
  const writer = new Writer();
  encodeInto(writer, value);
  return writer.finish();
}

/**
 * `encodeValue` as pieces, byte values larger than 64 bytes referenced rather than copied: for a
 * sender whose buffers stay untouched until written (the agent's answers), a page range is not
 * copied again on its way to the channel.
 */
export function encodeValueParts(value: WireValue): { parts: Buffer[]; byteLength: number } {
  const writer = new Writer();
  encodeInto(writer, value);
  return writer.finishParts();
}

class Reader {
  offset = 0;
  constructor(private readonly buffer: Buffer) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length) {
      throw new Error(
        `truncated payload: ${bytes} bytes needed at offset ${this.offset} of ${this.buffer.length}`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  i32(): number {
    this.need(4);
    const value = this.buffer.readInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.buffer.readDoubleLE(this.offset);
    this.offset += 8;
    return value;
  }

  /** A view into the payload: the payload buffer belongs to one frame and is not reused. */
  bytes(length: number): Buffer {
    this.need(length);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }
}

function decodeFrom(reader: Reader): WireValue {
  const tag = reader.u8();
  switch (tag) {
    case TAG_UNDEFINED:
      return undefined;
    case TAG_NULL:
      return null;
    case TAG_FALSE:
      return false;
    case TAG_TRUE:
      return true;
    case TAG_INT32:
      return reader.i32();
    case TAG_FLOAT64:
      return reader.f64();
    case TAG_BIGINT:
      return BigInt(reader.bytes(reader.u32()).toString('latin1'));
    case TAG_STRING:
      return reader.bytes(reader.u32()).toString('utf8');
    case TAG_BYTES:
      return reader.bytes(reader.u32());
    case TAG_UINT32_ARRAY: {
      const count = reader.u32();
      const bytes = reader.bytes(count * 4);
      const result = new Uint32Array(count);
      for (let i = 0; i < count; i++) result[i] = bytes.readUInt32LE(i * 4);
      return result;
    }
    case TAG_ARRAY: {
      const count = reader.u32();
      const result: WireValue[] = [];
      for (let i = 0; i < count; i++) result.push(decodeFrom(reader));
      return result;
    }
    case TAG_OBJECT: {
      const count = reader.u32();
      const result: { [key: string]: WireValue } = {};
      for (let i = 0; i < count; i++) {
        const key = reader.bytes(reader.u32()).toString('utf8');
        result[key] = decodeFrom(reader);
      }
      return result;
    }
    default:
      throw new Error(`unknown value tag ${tag} at offset ${reader.offset - 1}`);
  }
}

export function decodeValue(payload: Buffer): WireValue {
  const reader = new Reader(payload);
  const value = decodeFrom(reader);
  if (reader.offset !== payload.length) {
    throw new Error(`${payload.length - reader.offset} bytes left after the payload's value`);
  }
  return value;
}
