/**
 * Finds added (special) tokens in raw text, leftmost-longest as the Rust
 * tokenizers crate does, before any pre-tokenisation: a user who types
 * `<｜User｜>` gets the special id (spec §E.1).
 */

interface TrieNode {
  children: Map<number, TrieNode>;
  id: number;
}

export class AddedTokenTrie {
  private readonly root: TrieNode = { children: new Map(), id: -1 };
  /** Matches any first character of an added token, to skip ordinary text fast. */
  private readonly firstChars: RegExp | null;

  constructor(tokens: ReadonlyArray<readonly [string, number]>) {
    const firsts = new Set<string>();
    for (const [content, id] of tokens) {
      if (content.length === 0) continue;
      firsts.add(content[0]!);
      let node = this.root;
      for (let i = 0; i < content.length; i++) {
        const c = content.charCodeAt(i);
        let child = node.children.get(c);
        if (!child) {
          child = { children: new Map(), id: -1 };
          node.children.set(c, child);
        }
        node = child;
      }
      node.id = id;
    }
    const escaped = [...firsts].map((c) => c.replace(/[\\\]^-]/g, "\\$&")).join("");
    this.firstChars = firsts.size ? new RegExp(`[${escaped}]`, "g") : null;
  }

  /** Calls `onText` for each stretch between added tokens and `onToken` for each token, in order. */
  split(text: string, onText: (segment: string) => void, onToken: (id: number) => void): void {
    const re = this.firstChars;
    if (!re) {
      if (text) onText(text);
      return;
    }
    let emitted = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const start = m.index;
      const [id, end] = this.longestAt(text, start);
      if (id < 0) continue;
      if (start > emitted) onText(text.slice(emitted, start));
      onToken(id);
      emitted = end;
      re.lastIndex = end;
    }
    if (emitted < text.length) onText(emitted === 0 ? text : text.slice(emitted));
  }

  private longestAt(text: string, start: number): [number, number] {
    let node: TrieNode | undefined = this.root;
    let bestId = -1;
    let bestEnd = start;
    for (let i = start; i < text.length; i++) {
      node = node.children.get(text.charCodeAt(i));
      if (!node) break;
      if (node.id >= 0) {
        bestId = node.id;
        bestEnd = i + 1;
      }
    }
    return [bestId, bestEnd];
  }
}
