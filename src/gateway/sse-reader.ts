/** The `data:` payloads of a server-sent event stream, as they arrive (comments and other fields skipped). */
export async function* sseData(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  let data: string[] = [];
  for await (const bytes of body) {
    buf += decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, "");
      buf = buf.slice(nl + 1);
      if (line === "") {
        if (data.length > 0) yield data.join("\n");
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
  }
  buf += decoder.decode();
  if (buf.startsWith("data:")) data.push(buf.slice(buf.startsWith("data: ") ? 6 : 5));
  if (data.length > 0) yield data.join("\n");
}
