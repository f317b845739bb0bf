/**
 * What the page keeps: conversations in localStorage (they survive a reload and a restart of the
 * browser), the API key in sessionStorage only (gone when the tab closes).
 */
import type { Conversation } from "./conversation.js";

const CONVERSATIONS = "dsv4-playground:conversations";
const CURRENT = "dsv4-playground:current";
const KEY = "dsv4-playground:api-key";

export function loadConversations(): Conversation[] {
  try {
    const list = JSON.parse(localStorage.getItem(CONVERSATIONS) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** False when the browser refused (storage full or disabled); the page says so. */
export function saveConversations(list: Conversation[], current: string): boolean {
  try {
    localStorage.setItem(CONVERSATIONS, JSON.stringify(list));
    localStorage.setItem(CURRENT, current);
    return true;
  } catch {
    return false;
  }
}

export function loadCurrentId(): string | null {
  return localStorage.getItem(CURRENT);
}

export function loadKey(): string {
  return sessionStorage.getItem(KEY) ?? "";
}

export function saveKey(key: string): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}
