// The consumer phone: texts go to the simulator's inbound webhook as a provider would post them, and what the
// brand sent to this number is read from the simulator's outbox, checked every moment.

import { byId, el, when } from "./dom.js";

const SENT_KEY = "smsconnector.phone.sent";
const POLL_MS = 500;
let sent = JSON.parse(sessionStorage.getItem(SENT_KEY) || "[]");
let received = [];

function consumer() {
  return byId("consumer").value.trim();
}

function brand() {
  return byId("brand").value.trim();
}

function render() {
  const mine = sent.filter((m) => m.from === consumer() && m.to === brand()).map((m) => ({ ...m, ours: true }));
  const theirs = received.filter((m) => m.to === consumer() && m.from === brand()).map((m) => ({ ...m, ours: false }));
  const thread = [...mine, ...theirs].sort((a, b) => a.at.localeCompare(b.at));
  const list = byId("thread");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...thread.map((m) => el("li", { class: `message ${m.ours ? "ours" : "theirs"}` },
    el("p", { class: "text", text: m.text }),
    el("p", { class: "meta" }, el("time", { datetime: m.at, text: when(m.at) })))));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

async function send(text) {
  const message = { id: `phone-${crypto.randomUUID()}`, from: consumer(), to: brand(), text };
  byId("phone-error").textContent = "";
  const response = await fetch("/webhooks/simulator/inbound", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(message),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    byId("phone-error").textContent = `Not delivered to the brand: ${data.detail || `HTTP ${response.status}`}`;
    return;
  }
  sent.push({ ...message, at: new Date().toISOString() });
  sessionStorage.setItem(SENT_KEY, JSON.stringify(sent));
  render();
}

// The outbox holds no times: a message is stamped when this page first sees it.
const seenAt = new Map();

async function poll() {
  try {
    const response = await fetch("/simulator/outbox", { cache: "no-store" });
    if (response.ok) {
      const now = new Date().toISOString();
      received = (await response.json()).map((m) => {
        if (!seenAt.has(m.id)) seenAt.set(m.id, now);
        return { ...m, at: seenAt.get(m.id) };
      });
      render();
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

byId("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = byId("text");
  const text = box.value;
  if (!text.trim()) return;
  box.value = "";
  await send(text);
  box.focus();
});

byId("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    byId("compose").requestSubmit();
  }
});

for (const button of document.querySelectorAll("[data-text]")) {
  button.addEventListener("click", () => send(button.dataset.text));
}
for (const id of ["consumer", "brand"]) byId(id).addEventListener("change", render);

poll();
