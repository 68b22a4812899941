// The agent workspace: sign in, the live conversation list, a conversation with its messages and statuses,
// the reply box with the host's own segment counter, and the conversation's actions.

import {
  ApiError, api, currentSession, followEvents, signIn, signOut, takeCodeFromFragment,
} from "./api.js";
import { byId, debounce, el, safeUrl, when } from "./dom.js";

const UNREAD_KEY = "smsconnector.unread";
const state = {
  me: null,
  conversations: [],
  selected: null,
  unread: JSON.parse(sessionStorage.getItem(UNREAD_KEY) || "{}"),
  analysis: null,
  sentId: null,
};

async function main() {
  const code = takeCodeFromFragment();
  if (code && !currentSession()) {
    try {
      await signIn(code);
    } catch (error) {
      showSignIn(`That sign-in link did not work (${error.message}). Sign in with your token instead.`);
      return;
    }
  }
  if (!currentSession()) {
    showSignIn("");
    return;
  }
  await start();
}

function showSignIn(message) {
  byId("sign-in").hidden = false;
  byId("sign-in-error").textContent = message;
  byId("token").focus();
}

byId("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = byId("token");
  try {
    await signIn(input.value);
  } catch (error) {
    byId("sign-in-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
    input.select();
    return;
  }
  input.value = "";
  byId("sign-in").hidden = true;
  await start();
});

byId("sign-out").addEventListener("click", async () => {
  await signOut();
  sessionStorage.removeItem(UNREAD_KEY);
  location.reload();
});

async function start() {
  // The list is asked for with the caller, not after: the session says whose role it is.
  const agentSession = currentSession().role === "agent";
  const [me] = await Promise.all([api("GET", "/api/me"), loadConversations(agentSession)]);
  state.me = me;
  const agent = state.me.agent;
  byId("me").hidden = false;
  byId("me-name").textContent = agent ? agent.name : "Administrator";
  byId("me-status").closest("label").hidden = !agent;
  byId("new-follow-up").hidden = !agent;
  if (agent) byId("me-status").value = agent.status;
  showLoad();
  byId("desk").hidden = false;
  await loadSkills();
  followEvents({
    onEvent,
    onState: (connection) => {
      const banner = byId("connection");
      banner.hidden = connection === "live";
      banner.textContent = connection === "live" ? "" : "Connection lost: reconnecting…";
      document.body.classList.toggle("offline", connection !== "live");
    },
    onLive: () => refreshAll().catch(reportError),
  });
}

function showLoad() {
  const agent = state.me && state.me.agent;
  byId("me-load").textContent = agent ? `${agent.open_conversations} of ${agent.max_concurrent} conversations` : "";
}

async function refreshMe() {
  state.me = await api("GET", "/api/me");
  showLoad();
}

async function refreshAll() {
  await Promise.all([loadConversations(), loadSkills(), refreshMe()]);
  if (state.selected) await loadConversation(state.selected);
}

// -- the list ------------------------------------------------------------------------------------------------

// An agent's open conversations are the ones assigned to them, page by page; an administrator sees the newest
// 200 of everyone's that are not closed.
async function loadConversations(agentSession = Boolean(state.me && state.me.agent)) {
  let items = [];
  if (agentSession) {
    for (let before = null; ;) {
      const page = (await api("GET", `/api/conversations?status=assigned&limit=200${before ? `&before=${before}` : ""}`)).items;
      items = items.concat(page);
      if (page.length < 200) break;
      before = page[page.length - 1].id;
    }
  } else {
    items = (await api("GET", "/api/conversations?limit=200")).items;
  }
  state.conversations = items.filter((c) => c.status !== "closed");
  state.conversations.sort((a, b) => b.last_message_at.localeCompare(a.last_message_at) || b.id - a.id);
  renderList();
}

const refreshList = debounce(() => loadConversations().catch(reportError), 50);
const refreshSkills = debounce(() => Promise.all([loadSkills(), refreshMe()]).catch(reportError), 200);

function renderList() {
  const list = byId("conversations");
  list.replaceChildren(...state.conversations.map((c) => {
    const unread = state.unread[c.id] || 0;
    const where = [c.entry_point, c.skill].filter(Boolean).join(" · ");
    return el("li", {},
      el("button", {
        type: "button", class: "conversation-item", "aria-current": c.id === state.selected ? "true" : null,
        dataset: { id: c.id },
        "aria-label": `${c.consumer_number}${unread ? `, ${unread} unread` : ""}`,
      },
      el("span", { class: "who", text: c.consumer_number }),
      el("span", { class: "when", text: when(c.last_message_at) }),
      el("span", { class: "where", text: where || c.status }),
      unread ? el("span", { class: "unread", text: String(unread), "aria-hidden": "true" }) : null));
  }));
  byId("no-conversations").hidden = state.conversations.length > 0;
  // For anyone measuring how soon an agent sees their list (bench/workspace.py): once, from navigation start.
  if (!performance.getEntriesByName("conversations-listed").length) performance.mark("conversations-listed");
}

byId("conversations").addEventListener("click", (event) => {
  const item = event.target.closest(".conversation-item");
  if (item) select(Number(item.dataset.id)).catch(reportError);
});

async function loadSkills() {
  const { items } = await api("GET", "/api/skills");
  const mine = state.me.agent ? items.filter((s) => state.me.agent.skills.includes(s.name)) : items;
  const waiting = mine.map((s) => `${s.name} ${s.queued}`).join(", ");
  byId("queues").textContent = mine.length ? `Waiting in queue: ${waiting}` : "";
  const picker = byId("transfer-skill");
  const chosen = picker.value;
  picker.replaceChildren(...items.map((s) => el("option", { value: s.name, text: s.name })));
  if (chosen) picker.value = chosen;
}

// -- live events ---------------------------------------------------------------------------------------------

function onEvent(kind, data) {
  const id = data.conversation_id;
  if (kind === "message.received" && id !== state.selected && (data.piece || 1) === (data.pieces || 1)) {
    state.unread[id] = (state.unread[id] || 0) + 1;
    sessionStorage.setItem(UNREAD_KEY, JSON.stringify(state.unread));
  }
  if (kind.startsWith("conversation.")) refreshSkills();
  if (kind !== "message.status") refreshList();
  if (id && id === state.selected) reloadSelected();
}

const reloadSelected = debounce(() => {
  if (state.selected) loadConversation(state.selected).catch(reportError);
}, 50);

// -- one conversation ----------------------------------------------------------------------------------------

async function select(id) {
  state.selected = id;
  delete state.unread[id];
  sessionStorage.setItem(UNREAD_KEY, JSON.stringify(state.unread));
  renderList();
  document.body.classList.add("viewing");
  byId("reply-error").textContent = "";
  byId("action-error").textContent = "";
  await loadConversation(id);
  byId("reply").focus();
}

byId("back").addEventListener("click", () => {
  document.body.classList.remove("viewing");
  const item = document.querySelector(`.conversation-item[data-id="${state.selected}"]`);
  if (item) item.focus();
});

async function loadConversation(id) {
  let detail;
  try {
    detail = await api("GET", `/api/conversations/${id}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
      deselect(error.status === 403 ? "This conversation is no longer assigned to you." : error.message);
      return;
    }
    throw error;
  }
  if (id !== state.selected) return;
  renderConversation(detail);
}

function deselect(message) {
  state.selected = null;
  byId("conversation-body").hidden = true;
  byId("empty-state").hidden = false;
  byId("empty-state").textContent = message || "Choose a conversation.";
  document.body.classList.remove("viewing");
  renderList();
}

function renderConversation(c) {
  byId("empty-state").hidden = true;
  byId("conversation-body").hidden = false;
  byId("conversation-title").textContent = c.consumer_number;
  const facts = [["Brand number", c.brand_number], ["Skill", c.skill || "none"], ["Status", c.status],
    ...(c.entry_point ? [["Entry point", c.entry_point]] : []),
    ...Object.entries(c.context || {}).map(([key, value]) => [key.replaceAll("_", " "),
      typeof value === "string" ? value : JSON.stringify(value)])];
  byId("conversation-facts").replaceChildren(...facts.flatMap(([term, value]) => [
    el("dt", { text: term }), el("dd", { text: value })]));
  const notes = [...new Set(c.messages.flatMap((m) => m.notes))];
  byId("conversation-notes").replaceChildren(...notes.map((note) => el("li", { text: note })));
  const list = byId("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...c.messages.map(renderMessage));
  for (const m of c.messages) showVerdict(m);
  if (atBottom || list.dataset.conversation !== String(c.id)) list.scrollTop = list.scrollHeight;
  list.dataset.conversation = String(c.id);
  const open = c.status !== "closed";
  byId("reply-form").hidden = !open;
  byId("close-conversation").hidden = !open;
  byId("transfer-form").hidden = !open;
  if (c.brand_number) byId("follow-up-from").value = c.brand_number;
}

function renderMessage(m) {
  const ours = m.direction === "outbound";
  const media = m.media.map((item) => {
    const url = safeUrl(item.url);
    if (!url) return el("p", { class: "media", text: `attachment (unsupported address) ${item.url}` });
    if ((item.content_type || "").startsWith("image/")) {
      return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "media" },
        el("img", { src: url, alt: "Image sent by the consumer", loading: "lazy", referrerpolicy: "no-referrer" }));
    }
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "media",
      text: `Attachment (${item.content_type || "file"})` });
  });
  const notes = m.notes.length ? el("ul", { class: "message-notes" }, m.notes.map((n) => el("li", { text: n }))) : null;
  return el("li", { class: `message ${ours ? "ours" : "theirs"}`, dataset: { id: m.id, status: m.status } },
    el("p", { class: "text", text: m.text }),
    media, notes,
    el("p", { class: "meta" },
      el("time", { datetime: m.created_at, text: when(m.created_at) }),
      m.handled_by && m.handled_by !== "router" ? ` · handled by ${m.handled_by}` : "",
      ours ? el("span", { class: `status status-${m.status}`, text: statusText(m) }) : null));
}

// The send checks run as the message leaves the outbox: a refusal or deferral of the reply just sent is shown
// by the reply box as soon as the API tells (in its answer, or in the status event moments later).
function showVerdict(m) {
  if (m.id !== state.sentId) return;
  if (m.status === "refused" || m.status === "deferred") {
    byId("reply-error").textContent = `Your reply was ${statusText(m)}`;
    state.sentId = null;
  } else if (m.status !== "queued") {
    state.sentId = null;
  }
}

function statusText(m) {
  const reason = [m.error_message, m.error_code && `(${m.error_code})`].filter(Boolean).join(" ");
  switch (m.status) {
    case "refused": return `refused: ${reason}`;
    case "failed":
    case "undelivered": return `${m.status}: ${reason}`;
    case "deferred": return `deferred until ${m.next_attempt_at ? when(m.next_attempt_at) : "later"}${reason ? `: ${reason}` : ""}`;
    case "retrying": return `retrying at ${m.next_attempt_at ? when(m.next_attempt_at) : "soon"}${reason ? `: ${reason}` : ""}`;
    default: return m.status;
  }
}

// -- the reply box -------------------------------------------------------------------------------------------

let analysisFor = null;

async function analyse(text) {
  if (analysisFor === text && state.analysis) return state.analysis;
  const result = await api("POST", "/api/segments", { text });
  if (byId("reply").value === text) {
    state.analysis = result;
    analysisFor = text;
    showCounter(result);
  }
  return result;
}

function showCounter(a) {
  const counter = byId("counter");
  counter.classList.toggle("error", Boolean(a.refusal));
  if (a.refusal) {
    counter.textContent = `${a.characters} / ${a.limit} characters: too long to send (${a.refusal})`;
    return;
  }
  const parts = [`${a.characters} / ${a.limit} characters`, a.encoding,
    `${a.segments} segment${a.segments === 1 ? "" : "s"}`];
  if (a.non_gsm_characters.length) parts.push(`UCS-2 because of ${a.non_gsm_characters.join(" ")}`);
  counter.textContent = parts.join(" · ");
}

const analyseSoon = debounce((text) => analyse(text).catch((error) => {
  if (!(error instanceof ApiError) || error.status !== 422) return reportError(error);
  byId("counter").classList.add("error");
  byId("counter").textContent = `${text.length} characters: far too long to send`;
}), 120);

byId("reply").addEventListener("input", (event) => {
  byId("reply-error").textContent = "";
  analyseSoon(event.target.value);
});

byId("reply").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) byId("reply-form").requestSubmit();
});

byId("reply-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = byId("reply");
  const error = byId("reply-error");
  const text = box.value;
  const id = state.selected;
  if (!text.trim() || !id) return;
  const analysis = await analyse(text);
  if (analysis.refusal) {
    error.textContent = `Not sent: ${analysis.refusal}.`;
    return;
  }
  byId("send").disabled = true;
  try {
    const message = await api("POST", `/api/conversations/${id}/messages`, { text });
    box.value = "";
    byId("counter").textContent = "";
    state.analysis = null;
    state.sentId = message.id;
    showVerdict(message);
    await loadConversation(id);
  } catch (failure) {
    error.textContent = failure instanceof ApiError ? `Not sent: ${failure.detail} (${failure.code})` : String(failure);
  } finally {
    byId("send").disabled = false;
  }
});

// -- actions -------------------------------------------------------------------------------------------------

async function act(fn) {
  byId("action-error").textContent = "";
  try {
    await fn();
  } catch (failure) {
    byId("action-error").textContent = failure instanceof ApiError ? `${failure.detail} (${failure.code})` : String(failure);
  }
}

byId("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const skill = byId("transfer-skill").value;
  act(async () => {
    await api("POST", `/api/conversations/${state.selected}/transfer`, { skill });
    await refreshAfterAction(`Transferred to ${skill}.`);
  });
});

byId("close-conversation").addEventListener("click", () => act(async () => {
  await api("POST", `/api/conversations/${state.selected}/close`);
  await refreshAfterAction("Conversation closed.");
}));

async function refreshAfterAction(message) {
  await Promise.all([loadConversations(), refreshMe()]);
  if (state.conversations.some((c) => c.id === state.selected)) await loadConversation(state.selected);
  else deselect(message);
}

byId("me-status").addEventListener("change", (event) => act(async () => {
  await api("PUT", `/api/agents/${state.me.agent.id}/status`, { status: event.target.value });
  await refreshMe();
}));

byId("new-follow-up").addEventListener("click", () => {
  byId("follow-up-error").textContent = "";
  byId("follow-up-dialog").showModal();
  byId("follow-up-to").focus();
});

byId("follow-up-cancel").addEventListener("click", () => byId("follow-up-dialog").close());

byId("follow-up-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const conversation = await api("POST", "/api/conversations",
      { to: form.get("to"), from: form.get("from"), text: form.get("text") });
    byId("follow-up-dialog").close();
    event.target.reset();
    await loadConversations();
    await select(conversation.id);
  } catch (failure) {
    byId("follow-up-error").textContent = failure instanceof ApiError ? `${failure.detail} (${failure.code})` : String(failure);
  }
});

function reportError(error) {
  if (error instanceof ApiError && error.status === 401) return;
  byId("action-error").textContent = error instanceof ApiError ? `${error.detail} (${error.code})` : String(error);
}

main().catch(reportError);
