/**
 * A JSON writer that lays text out as pg_probackup's utils/json.c does: every key and every nested
 * object on its own line, indented four spaces per level, `"key": value`, commas at line ends, and
 * a closing bracket back at its opener's indentation (at level 0 on a new line with no indent).
 * JSON.stringify's layout differs (empty arrays as `[]`, different escapes), and scripts that diff
 * pg_probackup's output should see the same bytes.
 */
export class ProbackupJsonWriter {
  private text = '';
  private level = 0;
  private needComma = false;

  beginArray(): void {
    this.text += '[';
    this.level++;
    this.needComma = false;
  }

  endArray(): void {
    this.close(']');
  }

  beginObject(): void {
    this.indent();
    this.text += '{';
    this.level++;
    this.needComma = false;
  }

  endObject(): void {
    this.close('}');
  }

  /** A comma between sibling objects of an array, which pg_probackup writes before the next `{`. */
  separator(): void {
    this.text += ',';
  }

  key(name: string): void {
    if (this.needComma) this.text += ',';
    this.indent();
    this.text += `${escapeJsonString(name)}: `;
    this.needComma = true;
  }

  string(name: string, value: string): void {
    this.key(name);
    this.text += escapeJsonString(value);
  }

  number(name: string, value: number | bigint): void {
    this.key(name);
    this.text += String(value);
  }

  /** A value written as is: pg_probackup prints some with printf (`%.2f`) or as a literal `[]`. */
  raw(name: string, text: string): void {
    this.key(name);
    this.text += text;
  }

  toString(): string {
    return this.text;
  }

  private close(bracket: string): void {
    this.level--;
    if (this.level === 0) this.text += '\n';
    else this.indent();
    this.text += bracket;
    this.needComma = true;
  }

  private indent(): void {
    if (this.level === 0) return;
    this.text += '\n' + '    '.repeat(this.level);
  }
}

const namedEscapes: Record<string, string> = {
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '"': '\\"',
  '\\': '\\\\',
};

/** json.c `json_add_escaped`: named escapes, `\u00XX` for other control characters, the rest verbatim. */
export function escapeJsonString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const named = namedEscapes[ch];
    if (named !== undefined) out += named;
    else if (ch.charCodeAt(0) < 0x20) out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
