/** One message of the conversation: markdown content, the reasoning block, tool calls, figures. */
import { useState } from "preact/hooks";
import type { ChatMessage, ToolCall, TurnStats } from "../conversation.js";
import { renderMarkdown } from "../markdown.js";

function Markdown({ text }: { text: string }) {
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(text) }} />;
}

/**
 * Open while the reasoning streams, so it is seen live; closed once the turn ends, unless the
 * user opened or closed it by hand.
 */
function Reasoning({ text, streaming }: { text: string; streaming: boolean }) {
  const [chosen, setChosen] = useState<boolean | null>(null);
  const open = chosen ?? streaming;
  return (
    <details
      class="reasoning"
      open={open}
      onToggle={(e) => {
        const now = (e.currentTarget as HTMLDetailsElement).open;
        if (now !== open) setChosen(now);
      }}
    >
      <summary>
        {streaming ? "Thinking…" : "Reasoning"} <span class="muted">({text.length} characters)</span>
      </summary>
      <pre class="reasoning-text">{text}</pre>
    </details>
  );
}

function ToolCallView({ call }: { call: ToolCall }) {
  return (
    <div class="tool-call">
      <div class="tool-call-head">
        Tool call <code class="tool-name">{call.function.name || "…"}</code> <span class="muted call-id">{call.id}</span>
      </div>
      <pre class="tool-args">{call.function.arguments}</pre>
    </div>
  );
}

function money(usd: number): string {
  return usd === 0 ? "$0" : usd < 0.01 ? `$${usd.toPrecision(3)}` : `$${usd.toFixed(4)}`;
}

export function Figures({ stats }: { stats: TurnStats }) {
  const u = stats.usage;
  const parts: string[] = [];
  if (u) {
    parts.push(`${u.prompt_tokens} in (${u.prompt_cache_hit_tokens ?? 0} cached)`);
    const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
    parts.push(`${u.completion_tokens} out${reasoning ? ` (${reasoning} reasoning)` : ""}`);
    if (typeof u.cost === "number") parts.push(money(u.cost));
  }
  if (stats.ttftMs !== null) parts.push(`TTFT ${Math.round(stats.ttftMs)} ms`);
  if (stats.tokensPerSecond !== null) parts.push(`${stats.tokensPerSecond.toFixed(1)} tok/s`);
  if (stats.finishReason) parts.push(`finish: ${stats.finishReason}`);
  return <div class="figures">{parts.join(" · ")}</div>;
}

export function MessageView({ message, streaming }: { message: ChatMessage; streaming: boolean }) {
  if (message.role === "tool") {
    return (
      <li class="msg msg-tool">
        <div class="role">
          Tool result <span class="call-id">{message.toolCallId}</span>
        </div>
        <pre class="tool-result">{message.content}</pre>
      </li>
    );
  }
  if (message.role === "user") {
    return (
      <li class="msg msg-user">
        <div class="role">You</div>
        <Markdown text={message.content} />
      </li>
    );
  }
  return (
    <li class={`msg msg-assistant${streaming ? " streaming" : ""}`} aria-busy={streaming}>
      <div class="role">Assistant</div>
      {message.reasoning ? <Reasoning text={message.reasoning} streaming={streaming && !message.content && !message.toolCalls?.length} /> : null}
      {message.content ? <Markdown text={message.content} /> : null}
      {message.toolCalls?.map((c, i) => <ToolCallView key={i} call={c} />)}
      {message.error ? (
        <p class="error" role="alert">
          {message.error}
        </p>
      ) : null}
      {message.stats ? <Figures stats={message.stats} /> : null}
    </li>
  );
}
