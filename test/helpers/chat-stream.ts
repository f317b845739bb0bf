import assert from "node:assert/strict";

/**
 * A streamed chat of `maxTokens` tokens (no early end token) on `url` (a server's or gateway's
 * base URL); resolves once content has begun, with `rest` resolving to the whole SSE text when
 * the stream ends.
 */
export async function streamChat(url: string, maxTokens: number): Promise<{ rest: Promise<string> }> {
  const r = await fetch(`${url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "deepseek-v4-flash", messages: [{ role: "user", content: "Tell me a long story." }], max_tokens: maxTokens, stream: true, ignore_eos: true, thinking: { type: "disabled" } }),
  });
  assert.equal(r.status, 200);
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes('"content":"')) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the stream ended before any content");
    text += decoder.decode(value, { stream: true });
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { rest };
}

/** The last SSE event of a stream, parsed: an error event's `error`. */
export function lastError(text: string): { code: string; message: string } {
  const last = text.trim().split("\n\n").at(-1)!;
  return (JSON.parse(last.replace(/^data: /, "")) as { error: { code: string; message: string } }).error;
}
