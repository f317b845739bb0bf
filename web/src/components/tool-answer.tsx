/** The hand-written result for a pending tool call: the user plays the tool in the agent loop. */
import { useState } from "preact/hooks";
import type { ToolCall } from "../conversation.js";

export function ToolAnswer({ call, onAnswer, disabled }: { call: ToolCall; onAnswer: (text: string) => void; disabled: boolean }) {
  const [text, setText] = useState("");
  const id = `answer-${call.id}`;
  return (
    <form
      class="tool-answer"
      onSubmit={(e) => {
        e.preventDefault();
        onAnswer(text);
      }}
    >
      <label for={id}>
        Result of <code>{call.function.name}</code> ({call.id})
      </label>
      <textarea id={id} rows={3} value={text} placeholder='e.g. {"temperature": 21}' onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
      <button type="submit" disabled={disabled}>
        Send result
      </button>
    </form>
  );
}
