/**
 * Framing of the agent protocol over the SSH exec channel (the agent's stdin and stdout):
 *
 *   u32 LE  bodyBytes      bytes after this field
 *   u8      kind           FrameKind
 *   u32 LE  requestId      0 for HELLO; chosen by the client for a request, echoed by every
 *                          frame the agent sends for it
 *   ...     payload        bodyBytes - 5 bytes (a `values.ts` value, or raw bytes for DATA)
 *
 * Requests carry ids so that many run at once over the one channel (`-j N` streams share one
 * SSH connection) and their answers may come back in any order. A request is answered by zero
 * or more DATA frames (streamed file content) and then exactly one RESULT or ERROR frame.
 */
export const FrameKind = {
  /** First frame the agent sends: who it is and which protocol it speaks. */
  Hello: 1,
  Request: 2,
  Result: 3,
  Error: 4,
  Data: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/**
 * Version of this framing and of the operations in `ops.ts`. The client refuses an agent that
 * speaks another one (the agent file is replaced when its hash differs, so a mismatch means a
 * foreign agent was started).
 */
export const AGENT_PROTOCOL_VERSION = 1;
/** The HELLO payload's `magic`: the stdout of anything else (a login banner, a shell error) is refused. */
export const AGENT_MAGIC = 'strata-agent';

const HEADER_BYTES = 9;
/** Bounds one frame: the largest payload is a page range (1024 uncompressed pages + headers). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export interface Frame {
  kind: FrameKind;
  requestId: number;
  payload: Buffer;
}

function frameHeader(kind: FrameKind, requestId: number, payloadBytes: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(payloadBytes + 5, 0);
  header[4] = kind;
  header.writeUInt32LE(requestId, 5);
  return header;
}

export function encodeFrame(kind: FrameKind, requestId: number, payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(kind, requestId, payload.length), payload]);
}

/** A frame as its header followed by the payload's pieces, to be written in order without joining them. */
export function encodeFrameParts(
  kind: FrameKind,
  requestId: number,
  payload: { parts: Buffer[]; byteLength: number },
): Buffer[] {
  return [frameHeader(kind, requestId, payload.byteLength), ...payload.parts];
}

/** Splits a byte stream into frames; bytes may arrive in chunks of any size. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Frames completed by `chunk`. Throws on a frame that cannot be valid (bad length, bad kind). */
  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(HEADER_BYTES);
      const bodyBytes = head.readUInt32LE(0);
      if (bodyBytes < 5 || bodyBytes > MAX_FRAME_BYTES) {
        throw new Error(
          `invalid frame length ${bodyBytes}: the other side does not speak the Strata agent protocol`,
        );
      }
      if (this.buffered < 4 + bodyBytes) break;
      const whole = this.take(4 + bodyBytes);
      const kind = whole[4]!;
      if (kind < FrameKind.Hello || kind > FrameKind.Data)
        throw new Error(`invalid frame kind ${kind}`);
      frames.push({
        kind: kind as FrameKind,
        requestId: whole.readUInt32LE(5),
        payload: whole.subarray(HEADER_BYTES),
      });
    }
    return frames;
  }

  /** Bytes received but not yet part of a complete frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(bytes: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= bytes || this.chunks.length === 1) return first;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(bytes: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length === bytes) {
      this.chunks.shift();
      this.buffered -= bytes;
      return first;
    }
    if (first.length > bytes) {
      this.chunks[0] = first.subarray(bytes);
      this.buffered -= bytes;
      return first.subarray(0, bytes);
    }
    const joined = Buffer.concat(this.chunks);
    this.chunks = joined.length > bytes ? [joined.subarray(bytes)] : [];
    this.buffered -= bytes;
    return joined.subarray(0, bytes);
  }
}
