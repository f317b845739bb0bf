/**
 * The playground: conversations in the side panel with the request's settings and tools, the
 * messages and the composer in the main column. State lives here; the API calls in api.ts, the
 * stream's assembly in turn.ts, the request and export formats in conversation.ts.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiFailure, fetchUsage, listModels, streamChat, type UsageReport } from "./api.js";
import {
  assistantMessage,
  defaultSettings,
  exportJson,
  importJson,
  InputError,
  newConversation,
  newId,
  pendingToolCalls,
  requestBody,
  titleOf,
  type ChatMessage,
  type Conversation,
  type Settings,
  type ToolCall,
} from "./conversation.js";
import { applyChunk, emptyTurn, hasOutput } from "./turn.js";
import { loadConversations, loadCurrentId, loadKey, saveConversations, saveKey } from "./storage.js";
import { MessageView } from "./components/message.js";
import { SettingsForm } from "./components/settings.js";
import { ToolAnswer } from "./components/tool-answer.js";
import { ToolsForm } from "./components/tools.js";
import { UsageView } from "./components/usage.js";

function initialState(): { convs: Conversation[]; current: string } {
  const convs = loadConversations();
  if (convs.length === 0) convs.push(newConversation(defaultSettings()));
  const saved = loadCurrentId();
  return { convs, current: convs.some((c) => c.id === saved) ? saved! : convs[0]!.id };
}

const READY_MARK = "dsv4-playground-ready";

const wide = () => typeof matchMedia === "function" && matchMedia("(min-width: 56rem)").matches;

export function App() {
  const [state] = useState(initialState);
  const [convs, setConvs] = useState<Conversation[]>(state.convs);
  const [currentId, setCurrentId] = useState(state.current);
  const [key, setKey] = useState(loadKey);
  const [keyDraft, setKeyDraft] = useState(key);
  const [models, setModels] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [usage, setUsage] = useState<UsageReport | null>(null);
  const [streaming, setStreaming] = useState<{ convId: string; msgId: string } | null>(null);
  const abort = useRef<AbortController | null>(null);
  const keyInput = useRef<HTMLInputElement>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const importInput = useRef<HTMLInputElement>(null);
  const [draft, setDraft] = useState("");
  const scroller = useRef<HTMLDivElement>(null);
  const keyRef = useRef(key);
  keyRef.current = key;

  const conv = convs.find((c) => c.id === currentId) ?? convs[0]!;

  const replace = (id: string, change: (c: Conversation) => Conversation) => setConvs((cs) => cs.map((c) => (c.id === id ? change(c) : c)));

  const showFailure = (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    setError(message);
    if (err instanceof ApiFailure && err.unauthorized) keyInput.current?.focus();
  };

  const refreshUsage = () =>
    fetchUsage(keyRef.current).then(setUsage, (err) => {
      setUsage(null);
      if (err instanceof ApiFailure && err.unauthorized) showFailure(err);
    });

  // The server's models (and whether the key works), then the usage view where the server has one.
  useEffect(() => {
    listModels(key).then((list) => {
      // Rendered and talking to the server: what bench/playground.ts times as "interactive".
      if (performance.getEntriesByName(READY_MARK).length === 0) performance.mark(READY_MARK);
      setModels(list);
      setError(null);
      if (list.length > 0) setConvs((cs) => cs.map((c) => (c.messages.length === 0 && !list.includes(c.settings.model) ? { ...c, settings: { ...c.settings, model: list[0]! } } : c)));
    }, showFailure);
    refreshUsage();
  }, [key]);

  // Kept after every change, but not on every streamed chunk.
  useEffect(() => {
    if (streaming) return;
    if (!saveConversations(convs, currentId)) setError("The browser refused to store the conversations (storage full or disabled); export them to keep them.");
  }, [convs, currentId, streaming]);

  /** Streams the assistant's answer to `c` (already holding the user's message or tool results). */
  const runTurn = async (c: Conversation) => {
    let body: Record<string, unknown>;
    try {
      body = requestBody(c);
    } catch (err) {
      if (err instanceof InputError) return setError(`Cannot send: ${err.message}`);
      throw err;
    }
    setError(null);
    const msgId = newId();
    const controller = new AbortController();
    abort.current = controller;
    const sentAt = performance.now();
    let firstAt: number | null = null;
    let turn = emptyTurn();
    const show = (final: boolean) => {
      const m = assistantMessage(msgId, turn, { sentAt, firstAt, endAt: performance.now() });
      if (!final) delete m.stats;
      replace(c.id, (x) => ({ ...x, updated: Date.now(), messages: x.messages.map((y) => (y.id === msgId ? m : y)) }));
    };
    replace(c.id, (x) => ({ ...x, messages: [...x.messages, { id: msgId, role: "assistant", content: "" }] }));
    setStreaming({ convId: c.id, msgId });
    try {
      await streamChat(body, keyRef.current, controller.signal, (chunk) => {
        if (firstAt === null && hasOutput(chunk)) firstAt = performance.now();
        turn = applyChunk(turn, chunk);
        show(false);
      });
    } catch (err) {
      if (controller.signal.aborted) turn = { ...turn, error: "Stopped." };
      else {
        turn = { ...turn, error: err instanceof Error ? err.message : String(err) };
        showFailure(err);
      }
    }
    show(true);
    abort.current = null;
    setStreaming(null);
    refreshUsage();
  };

  const send = () => {
    const text = draft;
    if (!text.trim() || streaming) return;
    const user: ChatMessage = { id: newId(), role: "user", content: text };
    const next = { ...conv, title: conv.messages.length === 0 ? titleOf(text) : conv.title, updated: Date.now(), messages: [...conv.messages, user] };
    replace(conv.id, () => next);
    setDraft("");
    void runTurn(next);
  };

  const answerTool = (call: ToolCall, text: string) => {
    const next = { ...conv, messages: [...conv.messages, { id: newId(), role: "tool" as const, content: text, toolCallId: call.id }] };
    replace(conv.id, () => next);
    // Every call of the turn answered: the model goes on, as an agent framework would.
    if (pendingToolCalls(next).length === 0) void runTurn(next);
  };

  const setSettings = (s: Settings) => replace(conv.id, (c) => ({ ...c, settings: s }));

  const startNew = () => {
    const c = newConversation({ ...conv.settings });
    setConvs((cs) => [c, ...cs]);
    setCurrentId(c.id);
    composer.current?.focus();
  };

  const remove = () => {
    const rest = convs.filter((c) => c.id !== conv.id);
    if (rest.length === 0) rest.push(newConversation({ ...conv.settings }));
    setConvs(rest);
    setCurrentId(rest[0]!.id);
  };

  const exportCurrent = () => {
    const blob = new Blob([exportJson(conv)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${conv.title.replace(/[^\w.-]+/g, "_").slice(0, 40) || "conversation"}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  const importFile = async (file: File) => {
    try {
      const c = importJson(await file.text(), conv.settings);
      setConvs((cs) => [c, ...cs]);
      setCurrentId(c.id);
      setNotice(`Imported "${c.title}" (${c.messages.length} messages).`);
      setError(null);
    } catch (err) {
      setError(`Import failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  // Follow a streaming answer, unless the reader has scrolled up to read something.
  const pinned = useRef(true);
  useEffect(() => {
    const box = scroller.current;
    if (!box) return;
    const onScroll = () => (pinned.current = box.scrollHeight - box.scrollTop - box.clientHeight < 48);
    box.addEventListener("scroll", onScroll);
    return () => box.removeEventListener("scroll", onScroll);
  }, []);
  useEffect(() => {
    const box = scroller.current;
    if (box && pinned.current) box.scrollTop = box.scrollHeight;
  });

  const pending = streaming ? [] : pendingToolCalls(conv);
  const busyHere = streaming?.convId === conv.id;

  return (
    <div class="app">
      <a class="skip" href="#composer-input">
        Skip to the message box
      </a>
      <header class="top">
        <h1>dsv4 playground</h1>
        <form
          class="key-form"
          onSubmit={(e) => {
            e.preventDefault();
            saveKey(keyDraft.trim());
            setKey(keyDraft.trim());
          }}
        >
          <label for="api-key">API key</label>
          <input id="api-key" ref={keyInput} type="password" autocomplete="off" placeholder="kept for this tab only" value={keyDraft} onInput={(e) => setKeyDraft((e.currentTarget as HTMLInputElement).value)} />
          <button type="submit">Use key</button>
        </form>
      </header>
      <div class="layout">
        <aside class="side">
          <nav aria-label="Conversations" class="conversations">
            <div class="row">
              <button type="button" id="new-conversation" onClick={startNew}>
                New
              </button>
              <button type="button" onClick={exportCurrent}>
                Export
              </button>
              <button type="button" onClick={() => importInput.current?.click()}>
                Import
              </button>
              <button type="button" onClick={remove} disabled={busyHere}>
                Delete
              </button>
              <input
                ref={importInput}
                type="file"
                accept="application/json,.json"
                hidden
                onChange={(e) => {
                  const input = e.currentTarget as HTMLInputElement;
                  const file = input.files?.[0];
                  if (file) void importFile(file);
                  input.value = "";
                }}
              />
            </div>
            <ul>
              {convs.map((c) => (
                <li key={c.id}>
                  <button type="button" class="conv-link" aria-current={c.id === conv.id ? "page" : undefined} onClick={() => setCurrentId(c.id)}>
                    {c.title}
                  </button>
                </li>
              ))}
            </ul>
          </nav>
          <details class="panel" open={wide()}>
            <summary>Settings</summary>
            <SettingsForm settings={conv.settings} models={models} onChange={setSettings} />
          </details>
          <details class="panel" id="tools-panel">
            <summary>Tools ({conv.settings.tools.length})</summary>
            <ToolsForm settings={conv.settings} onChange={setSettings} />
          </details>
          {usage ? (
            <details class="panel" id="usage-panel">
              <summary>Usage</summary>
              <UsageView report={usage} />
            </details>
          ) : null}
        </aside>
        <main class="main">
          <div class="scroll" ref={scroller}>
          {error ? (
            <div class="error banner" role="alert">
              {error}
            </div>
          ) : null}
          {notice ? (
            <div class="notice banner" role="status">
              {notice}{" "}
              <button type="button" onClick={() => setNotice(null)}>
                Dismiss
              </button>
            </div>
          ) : null}
          <ol class="messages" aria-label="Messages">
            {conv.messages.length === 0 ? <li class="empty muted">Send a message to start.</li> : null}
            {conv.messages.map((m) => (
              <MessageView key={m.id} message={m} streaming={streaming?.msgId === m.id} />
            ))}
          </ol>
          {pending.map((call) => (
            <ToolAnswer key={call.id} call={call} disabled={Boolean(streaming)} onAnswer={(text) => answerTool(call, text)} />
          ))}
          </div>
          <form
            class="composer"
            onSubmit={(e) => {
              e.preventDefault();
              send();
            }}
          >
            <label for="composer-input" class="visually-hidden">
              Message
            </label>
            <textarea
              id="composer-input"
              ref={composer}
              rows={3}
              placeholder="Message (Enter sends, Shift+Enter adds a line, Esc stops)"
              value={draft}
              onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)}
              onKeyDown={(e) => {
                if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                  e.preventDefault();
                  send();
                } else if (e.key === "Escape" && abort.current) abort.current.abort();
              }}
            />
            {busyHere ? (
              <button type="button" id="stop" onClick={() => abort.current?.abort()}>
                Stop
              </button>
            ) : (
              <button type="submit" id="send" disabled={!draft.trim() || Boolean(streaming)}>
                Send
              </button>
            )}
          </form>
          {streaming && !busyHere ? (
            <p class="muted" role="status">
              An answer is still streaming in another conversation; Send is back once it ends (Esc stops it).
            </p>
          ) : null}
        </main>
      </div>
    </div>
  );
}
